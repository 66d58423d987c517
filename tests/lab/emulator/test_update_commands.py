"""freebsd-update and pkg upgrade on a lab host of their own (they change its release): what FreeBSD prints,
the exit statuses, and the versions before and after, for the host and for a jail root made from base.txz.

The lab's update server (the mirror) publishes version.UPDATE_PATCH of the release files that the lab installs
at version.PATCH; the lab's package repository offers a newer tor once the lab host publishes one in
/usr/libexec/lab/pkgrepo/tor."""

import os

import pytest

from lab import host, mirror, updates
from lab.freebsd.userland import version

pytestmark = pytest.mark.lab

NAME = os.environ.get("TORJAIL_LAB_UPDATE_HOST", "fbu1")
INDEX = int(os.environ.get("TORJAIL_LAB_UPDATE_INDEX", "71"))
OLD = f"{version.RELEASE}-{version.PATCH}"
NEW = f"{version.RELEASE}-{version.UPDATE_PATCH}"
SERVER = updates.server_name(mirror.url())
FU = "PAGER=cat freebsd-update --not-running-from-cron"
FETCH = FU + " fetch"
ROOT = "/var/jails/fbutor"
JAIL_CONF = f"""fbutor {{
    path = "{ROOT}";
    host.hostname = "fbutor";
    ip4.addr = "lo7|10.7.7.1/32";
    mount.devfs;
    exec.clean;
    exec.start = "/bin/sh /etc/rc";
    exec.stop = "/bin/sh /etc/rc.shutdown jail";
    exec.consolelog = "/var/log/jail_fbutor_console.log";
}}
"""
TORRC = "SocksPort 0\nORPort 10.7.7.1:9001\nNickname labupdate\nExitRelay 0\nLog notice file /var/log/tor/notices.log\n"


@pytest.fixture(scope="module")
def run():
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    if host.read_state(NAME):
        host.destroy(NAME, log=lambda text: None)
    host.up(NAME, INDEX, log=lambda text: None)

    def run_command(command, input=None, timeout=300):
        return host.ssh(NAME, command, input=input, timeout=timeout)
    yield run_command
    if not os.environ.get("TORJAIL_LAB_KEEP"):
        host.destroy(NAME, log=lambda text: None)


def checked(run, command, input=None):
    status, out, err = run(command, input=input)
    assert status == 0, f"{command}: {status}\n{out}{err}"
    return out


def test_the_lab_host_starts_at_the_installed_patch_level(run):
    assert checked(run, "freebsd-version -kru; uname -r").splitlines() == [OLD] * 4
    conf = checked(run, "cat /etc/freebsd-update.conf")
    assert f"\nServerName {SERVER}\n" in conf and f"\nKeyPrint {updates.KEYPRINT}\n" in conf
    assert "\nComponents src world kernel\n" in conf


def test_fetch_refuses_to_run_without_a_terminal(run):
    """freebsd-update.sh: `[ ! -t 0 -a $NOTTYOK -eq 0 ]`; automation must say --not-running-from-cron."""
    status, out, err = run("freebsd-update fetch")
    assert (status, out, err) == (1, "src component not installed, skipped\n"
                                     "freebsd-update fetch should not be run non-interactively.\n"
                                     "Run freebsd-update cron instead.\n", "")


def test_updatesready_with_nothing_fetched_exits_2(run):
    assert run("freebsd-update updatesready") == \
        (2, "src component not installed, skipped\nNo updates are available to install.\n", "")


def test_install_with_nothing_fetched_exits_2(run):
    assert run("freebsd-update install") == \
        (2, "src component not installed, skipped\nNo updates are available to install.\n"
            "Run 'freebsd-update [options] fetch' first.\n", "")


def test_fetch_lists_the_files_through_the_pager(run):
    out = checked(run, FETCH)
    assert out == ("src component not installed, skipped\n"
                   f"Fetching public key from {SERVER}... done.\n"
                   f"Fetching metadata signature for {version.RELEASE} from {SERVER}... done.\n"
                   "Fetching metadata index... done.\n"
                   "Fetching 2 metadata files... done.\n"
                   "Inspecting system... done.\n"
                   "Preparing to download files... done.\n"
                   "Fetching 3 patches.. done.\n"
                   "Applying patches... done.\n"
                   "Fetching 3 files... . done.\n"
                   "The following files will be updated as part of updating to\n"
                   f"{NEW}:\n"
                   "/bin/freebsd-version\n/boot/kernel/kernel\n/lib/libcrypto.so.30\n")


def test_without_pager_the_lists_go_through_less_and_a_missing_pager_is_only_an_error(run):
    """No PAGER: /usr/bin/less (which copies a pipe through); a PAGER that is not there: the shell's error,
    the list is lost, and fetch still succeeds (the pipeline's status is not checked)."""
    out = checked(run, "unset PAGER; freebsd-update --not-running-from-cron fetch")
    assert out.endswith(f"updating to\n{NEW}:\n/bin/freebsd-version\n/boot/kernel/kernel\n/lib/libcrypto.so.30\n")
    status, out, err = run("PAGER=/nonexistent freebsd-update --not-running-from-cron fetch")
    assert status == 0 and "/bin/freebsd-version" not in out and "/nonexistent: not found" in err


def test_updatesready_after_fetch_exits_0(run):
    assert run("freebsd-update updatesready") == \
        (0, "src component not installed, skipped\nThere are updates available to install.\n"
            "Run 'freebsd-update [options] install' to proceed.\n", "")


def test_install_applies_the_patch_level_the_kernel_runs_after_a_reboot(run):
    out = checked(run, "freebsd-update install")
    assert out.startswith("src component not installed, skipped\nInstalling updates...\n"
                          "Restarting sshd after upgrade\n"), out
    assert out.endswith("\n done.\n")
    assert checked(run, "freebsd-version -k; freebsd-version -u; freebsd-version -r; uname -r").splitlines() == \
        [NEW, NEW, OLD, OLD]
    assert checked(run, "ls /boot/kernel.old; test -f /boot/kernel.old/.freebsd-update && echo marked") == \
        "kernel\nmarked\n"
    assert run("freebsd-update updatesready")[0] == 2
    host.reboot(NAME, log=lambda text: None)
    assert checked(run, "freebsd-version -kru; uname -r").splitlines() == [NEW] * 4


def test_a_second_fetch_needs_nothing_and_install_has_nothing(run):
    out = checked(run, FETCH)
    assert out == ("src component not installed, skipped\n"
                   f"Fetching metadata signature for {version.RELEASE} from {SERVER}... done.\n"
                   "Fetching metadata index... done.\n"
                   "Inspecting system... done.\n"
                   "Preparing to download files... done.\n"
                   f"\nNo updates needed to update system to {NEW}.\n")
    assert run("freebsd-update install")[0] == 2
    # In one run, install after a fetch that found nothing says so and exits 0.
    status, out, _ = run(FETCH + " install")
    assert status == 0 and out.endswith(f"\nNo updates needed to update system to {NEW}.\n"
                                        "No updates are available to install.\n")


def test_bad_usage_prints_the_usage_and_exits_0_and_unemulated_commands_fail(run):
    status, out, _ = run("freebsd-update --bogus fetch")
    assert status == 0 and out.startswith("usage: freebsd-update [options] command ...\n")
    assert run("freebsd-update -b / -b /tmp fetch")[1].startswith("usage: ")
    status, _, err = run("freebsd-update rollback")
    assert status == 1 and "does not emulate 'rollback'" in err


@pytest.fixture(scope="module")
def jail_root(run):
    url = f"{mirror.url()}/{mirror.RELEASE_PATH}/base.txz"
    checked(run, f"mkdir -p {ROOT} /etc/jail.conf.d && fetch -q -o /tmp/fbu-base.txz {url} && "
                 f"tar -xf /tmp/fbu-base.txz -C {ROOT} && rm /tmp/fbu-base.txz")
    return ROOT


def test_a_jail_root_is_updated_apart_from_the_host(run, jail_root):
    assert checked(run, f"grep '^USERLAND_VERSION' {ROOT}/bin/freebsd-version") == \
        f'USERLAND_VERSION = "{OLD}"\n'
    out = checked(run, f"{FU} -b {ROOT} --currently-running {version.RELEASE} fetch")
    assert out.endswith("Preparing to download files... done.\n"
                        f"The following files will be updated as part of updating to\n{NEW}:\n"
                        "/bin/freebsd-version\n/lib/libcrypto.so.30\n"), out   # base.txz has no kernel
    assert run("freebsd-update updatesready")[0] == 2          # the host's state is its own (BDHASH)
    assert run(f"freebsd-update -b {ROOT} updatesready")[0] == 0
    assert checked(run, f"freebsd-update -b {ROOT} install") == \
        "src component not installed, skipped\nInstalling updates... done.\n"   # no sshd restart for -b


def test_jail_tor_and_pkg_upgrade(run, jail_root):
    """The updated jail reports the new userland through jexec; tor from pkg runs in it; a newer tor
    published in the lab's repository is listed by -n (exit 1), installed by -y, and tor keeps running."""
    checked(run, "pkg bootstrap -y")
    checked(run, f"pkg -r {ROOT} install -y tor")
    checked(run, "cat > /etc/jail.conf.d/fbutor.conf", input=JAIL_CONF)
    checked(run, f"cat > {ROOT}/usr/local/etc/tor/torrc", input=TORRC)
    checked(run, f"printf 'tor_enable=\"YES\"\\n' > {ROOT}/etc/rc.conf")
    checked(run, "ifconfig lo7 create && jail -c fbutor")
    try:
        assert checked(run, "jexec fbutor freebsd-version -u") == f"{NEW}\n"
        assert checked(run, "freebsd-version -j fbutor") == f"{NEW}\n"
        status, out, _ = run(f"{FU} -j fbutor fetch")
        assert status == 0 and out.endswith(f"\nNo updates needed to update system to {NEW}.\n"), out
        pid = checked(run, "i=0; until jexec fbutor service tor status; do i=$((i+1)); [ $i -gt 60 ] && exit 1; "
                           "sleep 0.5; done").split()[-1].rstrip(".")
        current = checked(run, "pkg -j fbutor query %v tor").strip()
        assert run("pkg -j fbutor upgrade -n") == (0, UPDATING + CHECKED + "Your packages are up to date.\n", "")
        newer = current + "_1"
        checked(run, f"mkdir -p /usr/libexec/lab/pkgrepo && echo {newer} > /usr/libexec/lab/pkgrepo/tor")
        plan = (UPDATING + CHECKED + "The following 1 package(s) will be affected (of 0 checked):\n\n"
                "Installed packages to be UPGRADED:\n"
                f"\ttor: {current} -> {newer}\n\nNumber of packages to be upgraded: 1\n\n3 MiB to be downloaded.\n")
        assert run("pkg -j fbutor upgrade -n") == (1, plan, "")
        assert checked(run, "pkg -j fbutor query %v tor") == f"{current}\n"
        out = checked(run, "pkg -j fbutor upgrade -y")
        assert out.startswith(plan) and f"[fbutor] [1/1] Upgrading tor from {current} to {newer}...\n" in out
        assert out.endswith(f"[fbutor] [1/1] Extracting tor-{newer}: 100%\n")
        assert checked(run, "pkg -j fbutor query %v tor") == f"{newer}\n"
        assert checked(run, "jexec fbutor service tor status") == f"tor is running as pid {pid}.\n"
        assert run("pkg -j fbutor upgrade") == (0, UPDATING + CHECKED + "Your packages are up to date.\n", "")
        # The host's only package is pkg itself, and the repository's pkg is the one installed.
        assert run("pkg upgrade -n") == (0, UPDATING + CHECKED + "Your packages are up to date.\n", "")
    finally:
        run("jail -r fbutor; ifconfig lo7 destroy; rm -f /usr/libexec/lab/pkgrepo/tor")


UPDATING = ("Updating FreeBSD repository catalogue...\nFreeBSD repository is up to date.\n"
            "All repositories are up to date.\n")
CHECKED = ("Checking for upgrades (1 candidates): 100%\nProcessing candidates (1 candidates): 100%\n"
           "Checking integrity... done (0 conflicting)\n")
