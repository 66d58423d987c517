"""What a reboot of a lab host drops and what the boot brings back, as on FreeBSD: the session's lab host is
configured as a deployed relay host would be (encrypted swap in fstab, a cloned lo1 with an alias, pflog, jails
enabled with an empty jail_list and no jail.conf: the relay's jail stays locked), given some run-time state a
reboot must drop (interfaces, aliases, a route, an nftables table), rebooted once, and examined. Its files are
restored (and it is rebooted again) afterwards."""

import re

import pytest

from lab import host, paths

pytestmark = pytest.mark.lab

ELI_SWAP = "/dev/vtbd0p3.eli\tnone\t\tswap\tsw,ealgo=AES-XTS,keylen=256,sectorsize=4096\t0\t0\n"
SAVED = ("/etc/fstab", "/etc/rc.conf")
RUNTIME_ALIAS = "198.18.250.3"
RUNTIME_ROUTE = "198.18.251.0/24"


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
    checked(lab_run, "sysrc pflog_enable=YES jail_enable=YES cloned_interfaces=lo1 "
                     "ifconfig_lo1_alias0='inet 10.0.0.1/32'")
    # Run-time network state, as a deploy leaves it (lo1 made before the next boot) and then some.
    ip, nft = "/usr/libexec/lab/bin/ip", "/usr/libexec/lab/bin/nft"
    checked(lab_run, "ifconfig lo1 create && ifconfig lo1 inet 10.0.0.1/32 alias && ifconfig lo7 create && "
                     f"ifconfig vtnet0 inet {RUNTIME_ALIAS}/32 alias && ifconfig lo0 inet 127.0.0.2/32 alias && "
                     f"{ip} route add {RUNTIME_ROUTE} via {paths.gateway(lab_host.index)} && "
                     f"{nft} add table inet boottest")
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


def test_a_reboot_drops_run_time_interfaces_aliases_routes_and_nftables(rebooted, lab_run):
    console = console_since_last_boot(rebooted.name)
    assert "Created clone interfaces: lo1.\n" in console
    assert "File exists" not in console, console
    assert lab_run("ifconfig lo7")[0] == 1
    assert [line.split()[1] for line in checked(lab_run, "ifconfig lo1").splitlines()
            if line.strip().startswith("inet ")] == ["10.0.0.1"]
    assert RUNTIME_ALIAS not in checked(lab_run, "ifconfig vtnet0")
    assert rebooted.address in checked(lab_run, "ifconfig vtnet0")
    assert "127.0.0.2" not in checked(lab_run, "ifconfig lo0")
    routes = checked(lab_run, "/usr/libexec/lab/bin/ip route show")
    assert RUNTIME_ROUTE not in routes and "default via" in routes
    assert checked(lab_run, "/usr/libexec/lab/bin/nft list tables") == ""


def test_the_boot_console_says_what_freebsd_says(rebooted):
    """Only rc.d messages, then /etc/rc's blank line and date; nothing from the lab's init or emulation."""
    lines = console_since_last_boot(rebooted.name).split("\n")[1:]
    assert lines[-3] == "" and lines[-1] == "", lines
    assert re.fullmatch(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \w+ \d{4}", lines[-2]), lines
    assert lines[:-3] == [
        "dumpon: WARNING: Activating kernel core dumping to potentially unencrypted swap device /dev/vtbd0p3.",
        "Mounting local filesystems:.",
        f"Setting hostname: {rebooted.name}.",
        "Created clone interfaces: lo1.",
        "Starting cron.",  # cron_enable="YES" is FreeBSD's default
        "Starting jails:jail: /etc/jail.conf: No such file or directory",  # jail_list empty: all of jail.conf
        ".",
        "Starting pflog.",
        "No core dumps found.",
        "Performing sanity check on sshd configuration.",
        "Starting sshd.",
    ]
