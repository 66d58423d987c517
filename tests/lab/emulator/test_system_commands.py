"""kldload/kldstat, sysctl, dumpon, sysrc, service, rcorder and the lab's rc.subr and rc.d scripts in a
private root: output formats and exit codes as FreeBSD prints them."""

import os
import sys

import pytest

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
FSTAB = ("/dev/vtbd0p2\t/\t\tufs\trw\t1\t1\n"
         "/dev/vtbd0p3.eli\tnone\t\tswap\tsw,ealgo=AES-XTS,keylen=256,sectorsize=4096\t0\t0\n")
DEFAULTS = """rc_conf_files="/etc/rc.conf /etc/rc.conf.local"
sshd_enable="NO"
pf_enable="NO"
gateway_enable="NO"
cloned_interfaces=""
dumpdev="AUTO"
savecore_enable="YES"
"""
DAEMON = """#!/bin/sh
# PROVIDE: napper
# REQUIRE: sshd
. /etc/rc.subr
name=napper
rcvar=napper_enable
command=/bin/sleep
pidfile=/var/run/napper.pid
start_cmd="napper_start"
napper_start()
{
	echo "Starting ${name}."
	/bin/sleep 300 >/dev/null 2>&1 &
	echo $! > $pidfile
}
load_rc_config $name
: ${napper_enable:="NO"}
run_rc_command "$1"
"""


@pytest.fixture
def root():
    from freebsd_root import PrivateRoot

    private = PrivateRoot()
    private.write("/etc/fstab", FSTAB)
    private.write("/etc/defaults/rc.conf", DEFAULTS)
    private.write("/etc/rc.conf", 'sshd_enable="YES"\n')
    with open(os.path.join(REPO, "lab/freebsd/rc.subr")) as handle:
        private.write("/etc/rc.subr", handle.read())
    for name in ("sshd", "dumpon", "savecore"):
        with open(os.path.join(REPO, "lab/freebsd/rc.d", name)) as handle:
            private.write(f"/etc/rc.d/{name}", handle.read(), 0o755)
    private.write("/usr/local/etc/rc.d/napper", DAEMON, 0o755)
    os.makedirs(private.path("/var/run"), exist_ok=True)
    yield private
    private.sh("[ -r /var/run/napper.pid ] && kill $(cat /var/run/napper.pid)")
    private.close()


def test_kldstat_listing_and_module_queries(root):
    listing = root.run("kldstat").stdout.splitlines()
    assert listing[0] == "Id Refs Address                Size Name"
    assert listing[1] == " 1    1 0xffffffff80200000  1f3e2d0 kernel"
    assert root.run("kldstat", "-q", "-m", "pf").returncode == 1
    assert root.run("kldload", "pf").returncode == 0
    assert root.run("kldstat", "-q", "-m", "pf").returncode == 0
    assert root.run("kldstat", "-q", "-m", "pf").stdout == ""
    assert root.run("kldstat").stdout.splitlines()[2].endswith(" pf.ko")
    again = root.run("kldload", "pf")
    assert (again.returncode, again.stderr) == (1, "kldload: can't load pf: module already loaded or in kernel\n")
    assert root.run("kldload", "-n", "pf").returncode == 0
    unknown = root.run("kldload", "nosuchmod")
    assert (unknown.returncode, unknown.stderr) == (1, "kldload: can't load nosuchmod: No such file or directory\n")
    assert root.run("kldload", "pflog").returncode == 0
    busy = root.run("kldunload", "pf")
    assert (busy.returncode, busy.stderr) == (1, "kldunload: can't unload file: Device busy\n")
    assert root.run("kldunload", "pflog").returncode == 0
    assert root.run("kldunload", "pf").returncode == 0
    flag = root.run("kldstat", "-z")
    assert flag.returncode == 1 and flag.stderr.startswith("kldstat: illegal option -- z\nusage: kldstat")


def test_sysctl_read_write_and_errors(root):
    assert root.run("sysctl", "net.inet.ip.random_id").stdout == "net.inet.ip.random_id: 0\n"
    assert root.run("sysctl", "-n", "kern.ipc.somaxconn").stdout == "128\n"
    assert root.run("sysctl", "-n", "hw.pagesize").stdout == "4096\n"
    assert root.run("sysctl", "-n", "security.jail.jailed").stdout == "0\n"
    write = root.run("sysctl", "net.inet.ip.random_id=1")
    assert (write.returncode, write.stdout) == (0, "net.inet.ip.random_id: 0 -> 1\n")
    assert root.run("sysctl", "-n", "net.inet.ip.random_id").stdout == "1\n"
    unknown = root.run("sysctl", "net.inet.nope")
    assert (unknown.returncode, unknown.stderr) == (1, "sysctl: unknown oid 'net.inet.nope'\n")
    read_only = root.run("sysctl", "hw.physmem=1")
    assert (read_only.returncode, read_only.stderr) == (1, "sysctl: oid 'hw.physmem' is read only\n")
    lower = root.run("sysctl", "kern.ipc.nmbclusters=1024")
    assert lower.returncode == 1
    root.write("/etc/sysctl.conf", "# tuning\nkern.ipc.somaxconn=1024\nkern.maxfiles=200000\n")
    applied = root.run("sysctl", "-f", "/etc/sysctl.conf")
    assert applied.stdout == "kern.ipc.somaxconn: 128 -> 1024\nkern.maxfiles: 130032 -> 200000\n"
    subtree = root.run("sysctl", "kern.ipc").stdout.splitlines()
    assert "kern.ipc.somaxconn: 1024" in subtree and len(subtree) >= 4


def test_dumpon(root):
    assert root.run("dumpon", "-l").stdout == "/dev/null\n"
    assert root.run("dumpon", "/dev/vtbd0p3").returncode == 0
    assert root.run("dumpon", "-l").stdout == "vtbd0p3\n"
    assert root.run("sysctl", "-n", "kern.shutdown.dumpdevname").stdout == "vtbd0p3\n"
    assert root.run("dumpon", "off").returncode == 0
    assert root.run("dumpon", "-l").stdout == "/dev/null\n"
    usage = root.run("dumpon")
    assert usage.returncode == 64 and usage.stderr.startswith("usage: dumpon")


def test_sysrc_get_set_delete(root):
    assert root.run("sysrc", "sshd_enable").stdout == "sshd_enable: YES\n"
    assert root.run("sysrc", "-n", "pf_enable").stdout == "NO\n"
    unknown = root.run("sysrc", "-n", "tor_enable")
    assert (unknown.returncode, unknown.stdout, unknown.stderr) == (1, "", "sysrc: unknown variable 'tor_enable'\n")
    assert root.run("sysrc", "-i", "-n", "tor_enable").returncode == 0
    assert root.run("sysrc", "tor_enable=YES").stdout == "tor_enable:  -> YES\n"
    assert root.run("sysrc", "pf_enable=YES").stdout == "pf_enable: NO -> YES\n"
    assert root.run("sysrc", "cloned_interfaces+=lo1").stdout == "cloned_interfaces:  -> lo1\n"
    assert root.run("sysrc", "cloned_interfaces+=lo1").stdout == "cloned_interfaces: lo1 -> lo1\n"
    assert root.read("/etc/rc.conf") == ('sshd_enable="YES"\ntor_enable="YES"\npf_enable="YES"\n'
                                         'cloned_interfaces="lo1"\n')
    assert root.run("sysrc", "-x", "tor_enable").returncode == 0
    assert "tor_enable" not in root.read("/etc/rc.conf")
    gone = root.run("sysrc", "-x", "tor_enable")
    assert (gone.returncode, gone.stderr) == (1, "sysrc: unknown variable 'tor_enable'\n")
    loader = root.run("sysrc", "-f", "/boot/loader.conf", "geom_eli_load=YES")
    assert loader.stdout == "geom_eli_load:  -> YES\n"
    assert root.read("/boot/loader.conf") == 'geom_eli_load="YES"\n'
    assert root.run("sysrc", "-f", "/boot/loader.conf", "-n", "geom_eli_load").stdout == "YES\n"
    flag = root.run("sysrc", "-z")
    assert flag.returncode == 1 and flag.stderr.startswith("Illegal option -z\nUsage: sysrc")


def test_sysrc_root_directory(root):
    root.write("/var/jails/tor/etc/rc.conf", 'tor_enable="YES"\n')
    assert root.run("sysrc", "-R", "/var/jails/tor", "-n", "tor_enable").stdout == "YES\n"
    assert root.run("sysrc", "-R", "/var/jails/tor", "sendmail_enable=NONE").returncode == 0
    assert 'sendmail_enable="NONE"' in root.read("/var/jails/tor/etc/rc.conf")
    assert "sendmail_enable" not in root.read("/etc/rc.conf")
    missing = root.run("sysrc", "-j", "nosuchjail", "tor_enable")
    assert missing.returncode == 1


def test_service_status_messages(root):
    refused = root.run("service", "napper", "status")
    assert refused.returncode == 1
    assert refused.stderr == ("Cannot 'status' napper. Set napper_enable to YES in /etc/rc.conf "
                              "or use 'onestatus' instead of 'status'.\n")
    stopped = root.run("service", "napper", "onestatus")
    assert (stopped.returncode, stopped.stdout) == (1, "napper is not running.\n")
    assert root.run("service", "napper", "onestart").stdout == "Starting napper.\n"
    pid = root.sh("cat /var/run/napper.pid").stdout.strip()
    running = root.run("service", "napper", "onestatus")
    assert (running.returncode, running.stdout) == (0, f"napper is running as pid {pid}.\n")
    twice = root.run("service", "napper", "onestart")
    assert twice.returncode == 1 and twice.stderr == f"napper already running? (pid={pid}).\n"
    stop = root.run("service", "napper", "onestop")
    assert stop.returncode == 0 and stop.stdout.startswith("Stopping napper.\n")
    assert root.run("service", "napper", "onestatus").returncode == 1
    missing = root.run("service", "nosuch", "start")
    assert missing.returncode == 1 and missing.stderr.startswith("nosuch does not exist in /etc/rc.d")
    bad = root.run("service", "napper", "frobnicate")
    assert bad.returncode == 1 and bad.stderr.startswith("Usage: /usr/local/etc/rc.d/napper [fast|force|one|quiet]")


def test_service_lists_in_boot_order(root):
    assert root.run("service", "-l").stdout == "dumpon\nnapper\nsavecore\nsshd\n"
    order = root.run("service", "-r").stdout.splitlines()
    assert order.index("/etc/rc.d/sshd") < order.index("/usr/local/etc/rc.d/napper")
    assert order.index("/etc/rc.d/dumpon") < order.index("/etc/rc.d/savecore")
    assert root.run("service", "-e").stdout == "/etc/rc.d/savecore\n/etc/rc.d/sshd\n"
    assert root.run("sysrc", "napper_enable=YES").returncode == 0
    assert root.run("service", "-e").stdout.splitlines()[-1] == "/usr/local/etc/rc.d/napper"
    assert root.run("service", "napper", "enabled").returncode == 0
    assert root.run("rcorder", "/etc/rc.d/savecore", "/etc/rc.d/dumpon").stdout == \
        "/etc/rc.d/dumpon\n/etc/rc.d/savecore\n"


def test_rc_dumpon_auto_uses_the_raw_swap_partition(root):
    assert root.sh("mknod /dev/vtbd0p3 c 1 3").returncode == 0  # the lab's /dev has the partition nodes
    started = root.run("service", "dumpon", "start")
    assert started.returncode == 0
    assert "unencrypted" in started.stderr
    assert root.run("dumpon", "-l").stdout == "vtbd0p3\n"
    assert root.run("sysrc", "dumpdev=NO").returncode == 0
    assert root.run("dumpon", "off").returncode == 0  # what a reboot does to the kernel's dump device
    assert root.run("service", "dumpon", "start").returncode == 0
    assert root.run("dumpon", "-l").stdout == "/dev/null\n"
    assert root.run("service", "savecore", "start").stdout == ""
