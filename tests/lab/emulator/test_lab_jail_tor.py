"""End to end on a lab host over real SSH: a jail built from the mirror's base.txz, tor installed by pkg,
started by the jail's own /etc/rc, listening on the jail's address, and gone with the jail."""

import re

import pytest

from lab import mirror

pytestmark = pytest.mark.lab

ROOT = "/var/jails/e2etor"
JAIL_CONF = f"""e2etor {{
    path = "{ROOT}";
    host.hostname = "e2etor";
    ip4.addr = "lo9|10.9.9.1/32";
    mount.devfs;
    devfs_ruleset = 4;
    securelevel = 3;
    enforce_statfs = 2;
    children.max = 0;
    exec.clean;
    exec.start = "/bin/sh /etc/rc";
    exec.stop = "/bin/sh /etc/rc.shutdown jail";
    exec.consolelog = "/var/log/jail_e2etor_console.log";
}}
"""
TORRC = "SocksPort 0\nORPort 10.9.9.1:9001\nNickname labendtoend\nExitRelay 0\nLog notice file /var/log/tor/notices.log\n"
WAIT_LISTENING = ("i=0; while [ $i -lt 120 ]; do sockstat -4 -l -j e2etor | grep -q 10.9.9.1:9001 && break; "
                  "sleep 0.5; i=$((i + 1)); done; sockstat -4 -l -j e2etor")


def checked(lab_run, command, input=None):
    status, out, err = lab_run(command, input=input, timeout=300)
    assert status == 0, f"{command}: {out}{err}"
    return out


@pytest.fixture
def jail_root(lab_run):
    url = f"{mirror.url()}/{mirror.RELEASE_PATH}/base.txz"
    checked(lab_run, f"mkdir -p {ROOT} /etc/jail.conf.d && fetch -q -o /tmp/e2etor-base.txz {url} && "
                     f"tar -xf /tmp/e2etor-base.txz -C {ROOT} && rm /tmp/e2etor-base.txz")
    yield ROOT
    lab_run("jail -r e2etor; ifconfig lo9 destroy; ifconfig lo8 destroy 2>/dev/null; "
            f"rm -rf {ROOT} /etc/jail.conf.d/e2etor.conf /var/log/jail_e2etor_console.log")


def test_real_tor_in_a_jail_from_base_txz(lab_run, jail_root):
    checked(lab_run, f"test -x {ROOT}/usr/bin/nc && test -L {ROOT}/sys")  # base.txz is the lab host's base
    lab_run("pkg bootstrap -y")
    installed = checked(lab_run, f"pkg -r {ROOT} install -y tor")
    assert "Creating user '_tor' with uid '256'" in installed
    checked(lab_run, "cat > /etc/jail.conf.d/e2etor.conf", input=JAIL_CONF)
    checked(lab_run, f"cat > {ROOT}/usr/local/etc/tor/torrc", input=TORRC)
    # netif (nojailvnet) and hostname keep off a non-VNET jail's network and name, as on FreeBSD.
    checked(lab_run, f"cat > {ROOT}/etc/rc.conf", input='tor_enable="YES"\ncloned_interfaces="lo8"\nhostname="x"\n')
    checked(lab_run, "ifconfig lo9 create")
    assert checked(lab_run, "jail -c e2etor") == "e2etor: created\n"
    listening = checked(lab_run, WAIT_LISTENING)
    assert any(line.split()[1:2] == ["tor"] and "10.9.9.1:9001" in line for line in listening.splitlines()), \
        listening + checked(lab_run, "cat /var/log/jail_e2etor_console.log")
    assert checked(lab_run, "jexec e2etor service tor status").startswith("tor is running as pid ")
    console = checked(lab_run, "cat /var/log/jail_e2etor_console.log")
    assert "Starting tor.\n" in console
    assert "lo8" not in console and "hostname" not in console.lower(), console
    assert lab_run("ifconfig lo8")[0] == 1
    assert checked(lab_run, "jexec e2etor hostname") == "e2etor\n"
    assert "e2etor" in checked(lab_run, "jls name").split()
    # ps shows the jail's processes (users by the host's passwd: _tor is 256 there), not the lab's jail machinery:
    # tor, and cron, which a jail's rc starts as FreeBSD's does (cron_enable defaults to YES, rc.d/cron is no nojail).
    shown = checked(lab_run, "ps -J e2etor -o user=,comm=").split()
    assert sorted(zip(shown[::2], shown[1::2])) == [("256", "tor"), ("root", "cron")]
    assert "jailinit" not in checked(lab_run, "ps axww")
    assert checked(lab_run, "jail -r e2etor") == "e2etor: removed\n"
    # exec.stop (rc.shutdown) ran to its end: the jail outlived tor while the shutdown still ran in it.
    console = checked(lab_run, "cat /var/log/jail_e2etor_console.log")
    assert re.search(r"\nStopping tor\.\nWaiting for PIDS: \d+\.\n", console), console
    assert "10.9.9.1" not in checked(lab_run, "sockstat -4 -l") + checked(lab_run, "ifconfig lo9")
