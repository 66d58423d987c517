"""What a reboot of a lab host drops and what the boot brings back, as on FreeBSD: the session's lab host is
configured as a deployed relay host would be (encrypted swap in fstab, a cloned lo1 with an alias), given some
run-time state a reboot must drop, rebooted once, and examined. Its files are restored afterwards."""

import pytest

from lab import host

pytestmark = pytest.mark.lab

ELI_SWAP = "/dev/vtbd0p3.eli\tnone\t\tswap\tsw,ealgo=AES-XTS,keylen=256,sectorsize=4096\t0\t0\n"
SAVED = ("/etc/fstab", "/etc/rc.conf")


def checked(lab_run, command):
    status, out, err = lab_run(command)
    assert status == 0, f"{command}: {out}{err}"
    return out


def console_since_last_boot(name):
    with open(host._console(name)) as handle:
        return handle.read().rsplit("\n--- boot ", 1)[-1]


@pytest.fixture(scope="module")
def rebooted(lab_host, lab_run):
    checked(lab_run, " && ".join(f"cp -p {path} {path}.before-boot-test" for path in SAVED))
    checked(lab_run, "sed -i '' -e 's|^/dev/vtbd0p3[[:space:]].*$||' /etc/fstab && cat >> /etc/fstab <<'EOF'\n"
                     f"{ELI_SWAP}EOF")
    checked(lab_run, "sysrc pflog_enable=YES")
    host.reboot(lab_host.name, log=lambda text: None)
    yield lab_host
    checked(lab_run, " && ".join(f"mv {path}.before-boot-test {path}" for path in SAVED))
    host.reboot(lab_host.name, log=lambda text: None)


def test_encrypted_swap_of_fstab_is_active_after_a_reboot(rebooted, lab_run):
    listing = checked(lab_run, "swapctl -l").splitlines()
    assert [line.split()[0] for line in listing[1:]] == ["/dev/vtbd0p3.eli"], listing
    assert "vtbd0p3.eli" in checked(lab_run, "geli status")
    assert "/sbin/swapon" not in console_since_last_boot(rebooted.name)


def test_one_rc_subr_serves_every_rc_d_script(rebooted, lab_run):
    """/etc/rc.subr is FreeBSD's fuller one (warn, load_rc_config_var, process checks) for the boot's scripts,
    the base services (sshd, dumpon, savecore) and the packages' (a lab program such as pflogd included)."""
    checked(lab_run, ". /etc/rc.subr && type warn load_rc_config_var wait_for_pids >/dev/null")
    assert checked(lab_run, "service -l").split() == sorted(checked(lab_run, "ls /etc/rc.d").split())
    for script in ("dumpon", "savecore", "sshd", "swap", "netif", "jail", "pf", "pflog"):
        assert f"/etc/rc.d/{script}" in checked(lab_run, "service -r").split()
    assert checked(lab_run, "service sshd status").startswith("sshd is running as pid ")
    assert checked(lab_run, "service pflog status").startswith("pflog is running as pid ")
    console = console_since_last_boot(rebooted.name)
    assert "Performing sanity check on sshd configuration.\nStarting sshd.\n" in console
    assert "Starting pflog.\n" in console
