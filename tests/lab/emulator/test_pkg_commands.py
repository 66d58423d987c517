"""pkg in a private root: bootstrap, the only real package (tor), messages and exit codes, and real tor
started by its rc.d script inside a jail, listening on the jail's address."""

import os
import re
import time

import pytest

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]

REPO_CONF = """FreeBSD: {
  url: "pkg+https://pkg.FreeBSD.org/${ABI}/latest",
  mirror_type: "srv",
  signature_type: "fingerprints",
  fingerprints: "/usr/share/keys/pkg",
  enabled: yes
}
"""
# What rc.d/tor and rc.subr run (rc.subr reads a process's /proc entries with readlink, tr, head and sed).
JAIL_PROGRAMS = ("/bin/sh", "/bin/sleep", "/bin/cat", "/bin/hostname", "/bin/ls", "/bin/mkdir", "/bin/chown",
                 "/bin/chmod", "/usr/bin/dirname", "/usr/bin/readlink", "/usr/bin/tr", "/usr/bin/head",
                 "/usr/bin/sed")
TORRC = """SocksPort 0
ORPort 10.0.0.1:9001
Nickname labjailtest
ExitRelay 0
Log notice file /var/log/tor/notices.log
"""
JAIL_CONF = """t {
    path = "/var/jails/t";
    host.hostname = "t";
    ip4.addr = "lo1|10.0.0.1/32";
    mount.devfs;
    exec.clean;
    exec.start = "/bin/sh /usr/local/etc/rc.d/tor start";
    exec.stop = "/bin/sh /usr/local/etc/rc.d/tor stop";
    exec.consolelog = "/var/log/jail_t_console.log";
}
"""
RC_SUBR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "lab", "freebsd", "rc.subr")


@pytest.fixture(scope="module")
def root():
    from network_root import NetworkRoot

    lab_root = NetworkRoot()
    lab_root.write("/usr/local/etc/pkg/repos/FreeBSD.conf", REPO_CONF)
    yield lab_root
    lab_root.close()


def pkg(root, *args, input=""):
    return root.run("/usr/sbin/pkg", *args, input=input)


def test_bootstrap(root):
    declined = pkg(root, "info")
    assert declined.returncode == 1
    assert declined.stdout.startswith("The package management tool is not yet installed on your system.\n"
                                      "Do you want to fetch and install it now? [y/N]: ")
    done = pkg(root, "bootstrap", "-y")
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == \
        "Bootstrapping pkg from pkg+https://pkg.FreeBSD.org/FreeBSD:14:amd64/latest, please wait..."
    assert pkg(root, "bootstrap").stdout == "pkg already bootstrapped at /usr/local/sbin/pkg\n"
    assert pkg(root, "info", "-E", "pkg").stdout.startswith("pkg-")
    assert pkg(root, "-v").stdout == "1.21.3\n"


def test_vv_shows_the_configured_branch(root):
    shown = pkg(root, "-vv").stdout
    assert '    url             : "pkg+https://pkg.FreeBSD.org/FreeBSD:14:amd64/latest",' in shown
    assert "  FreeBSD: { \n" in shown


def test_unknown_package_and_command(root):
    missing = pkg(root, "install", "-y", "nginx")
    assert missing.returncode == 1
    assert missing.stderr == ("pkg: No packages available to install matching 'nginx' have been found in the "
                              "repositories\n")
    assert pkg(root, "info", "-E", "nginx").returncode == 1
    assert pkg(root, "info", "-E", "nginx").stdout == ""
    assert pkg(root, "query", "%v", "nginx").returncode == 1
    assert pkg(root, "frobnicate").stderr == "pkg: unknown command: frobnicate\n"


def test_install_tor_into_a_root(root):
    root.make_root("/var/jails/t", JAIL_PROGRAMS)
    installed = pkg(root, "-r", "/var/jails/t", "install", "-y", "tor")
    assert installed.returncode == 0, installed.stderr
    assert "Creating user '_tor' with uid '256'" in installed.stdout
    version = pkg(root, "-r", "/var/jails/t", "query", "%v", "tor").stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", version)
    assert pkg(root, "-r", "/var/jails/t", "info", "-E", "tor").stdout == f"tor-{version}\n"
    assert pkg(root, "info", "-E", "tor").returncode == 1, "installed into the other root only"
    assert root.run("/usr/sbin/chroot", "/var/jails/t", "/usr/local/bin/tor", "--version").stdout.startswith(
        f"Tor version {version}")
    assert "_tor:*:256:256:" in root.read("/var/jails/t/etc/passwd")
    stat = os.stat(root.path("/var/jails/t/var/db/tor"))
    assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (256, 256, 0o700)
    assert os.path.exists(root.path("/var/jails/t/usr/local/etc/tor/torrc.sample"))
    again = pkg(root, "-r", "/var/jails/t", "install", "-y", "tor")
    assert again.stdout.endswith("The most recent versions of packages are already installed\n")


def test_real_tor_runs_in_a_jail_on_its_address(root):
    """rc.d/tor starts the real tor inside the jail; it listens on the jail's address and stops with the jail."""
    if not os.path.exists(root.path("/var/jails/t/usr/local/bin/tor")):
        pytest.skip("needs the tor install of the previous test")
    with open(RC_SUBR) as handle:
        root.write("/var/jails/t/etc/rc.subr", handle.read())
    root.write("/var/jails/t/etc/defaults/rc.conf", 'rc_conf_files="/etc/rc.conf"\n')
    root.write("/var/jails/t/etc/rc.conf", 'tor_enable="YES"\n')
    root.write("/var/jails/t/usr/local/etc/tor/torrc", TORRC)
    root.write("/etc/jail.conf", JAIL_CONF)
    assert root.run("/sbin/ifconfig", "lo1", "create").returncode == 0
    created = root.run("/usr/sbin/jail", "-c", "t")
    assert created.returncode == 0, created.stderr + root.read("/var/log/jail_t_console.log")
    try:
        listening = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "10.0.0.1:9001" not in listening:
            time.sleep(0.5)
            listening = root.run("/usr/bin/sockstat", "-4", "-l", "-j", "t").stdout
        line = next((l for l in listening.splitlines() if "10.0.0.1:9001" in l), None)
        assert line, root.read("/var/log/jail_t_console.log")
        assert re.match(r"256 +tor +\d+ +\d+ +tcp4 +10\.0\.0\.1:9001 +\*:\*$", line), line
        status = root.run("/usr/sbin/jexec", "t", "/bin/sh", "/usr/local/etc/rc.d/tor", "status")
        assert re.fullmatch(r"tor is running as pid \d+\.\n", status.stdout)
        cmdline = root.run("/usr/sbin/jexec", "t", "/bin/sh", "-c",
                           "cat /proc/$(cat /var/run/tor/tor.pid)/cmdline").stdout.split("\0")
        assert cmdline[cmdline.index("--PublishServerDescriptor") + 1] == "0"
    finally:
        removed = root.run("/usr/sbin/jail", "-r", "t")
    assert removed.returncode == 0
    assert "10.0.0.1:9001" not in root.run("/usr/bin/sockstat", "-4", "-l").stdout


def test_delete(root):
    deleted = pkg(root, "-r", "/var/jails/t", "delete", "-y", "tor")
    assert deleted.returncode == 0
    assert "Installed packages to be REMOVED:\n\ttor: " in deleted.stdout
    assert pkg(root, "-r", "/var/jails/t", "info", "-e", "tor").returncode == 1
    assert not os.path.exists(root.path("/var/jails/t/usr/local/bin/tor"))
