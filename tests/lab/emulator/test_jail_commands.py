"""jail, jls and jexec in a private root: jail.conf handling, creation/removal order, formats, exit codes."""

import json
import os
import re
import time

import pytest

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]

JAIL_CONF = """
t {{
    path = "/var/jails/$name";
    host.hostname = "t.example";
    ip4.addr = "lo1|10.0.0.1/32";
    mount.devfs;
    devfs_ruleset = 4;
    securelevel = 3;
    enforce_statfs = 2;
    children.max = 0;
    exec.clean;
    exec.start = "/bin/sh -c 'sleep 300 &'";
    exec.consolelog = "/var/log/jail_t_console.log";
{extra}
}}
"""


@pytest.fixture(scope="module")
def root():
    from network_root import NetworkRoot

    lab_root = NetworkRoot()
    lab_root.make_root("/var/jails/t")
    assert lab_root.run("/sbin/ifconfig", "lo1", "create").returncode == 0
    yield lab_root
    lab_root.close()


@pytest.fixture
def conf(root):
    def write(extra=""):
        root.write("/etc/jail.conf.d/t.conf", JAIL_CONF.format(extra=extra))

    yield write
    root.run("/usr/sbin/jail", "-r", "t")


def test_create_list_enter_remove(root, conf):
    """The whole life of a jail: created from jail.conf.d, listed in jls's formats, entered, removed."""
    conf()
    created = root.run("/usr/sbin/jail", "-c", "t")
    assert (created.returncode, created.stdout) == (0, "t: created\n"), created.stderr
    listing = root.run("/usr/sbin/jls").stdout.splitlines()
    assert listing[0] == "   JID  IP Address      Hostname                      Path"
    assert re.fullmatch(r" {5}\d  10\.0\.0\.1 {8}t\.example {21}/var/jails/t", listing[1])
    params = root.run("/usr/sbin/jls", "-n").stdout.split()
    assert "host.domainname=" in params and 'host.domainname=""' in root.run("/usr/sbin/jls", "-nq").stdout.split()
    assert {"name=t", "path=/var/jails/t", "host.hostname=t.example", "ip4.addr=10.0.0.1", "securelevel=3",
            "devfs_ruleset=4", "nopersist", "enforce_statfs=2"} <= set(params)
    document = root.run("/usr/sbin/jls", "--libxo", "json").stdout
    assert document.startswith('{"__version": "2", "jail-information": {"jail": [{"jid":')
    assert json.loads(document)["jail-information"]["jail"][0]["hostname"] == "t.example"
    assert root.run("/usr/sbin/jexec", "t", "hostname").stdout == "t.example\n"
    assert sorted(root.run("/usr/sbin/jexec", "t", "ls", "/dev").stdout.split()) == [
        "fd", "null", "random", "stderr", "stdin", "stdout", "urandom", "zero"]
    pids = [p for p in root.run("/usr/sbin/jexec", "t", "ls", "/proc").stdout.split() if p.isdigit()]
    assert "1" in pids and len(pids) <= 4, "the jail sees only its own processes"
    mounts = root.run("/bin/cat", "/proc/self/mounts").stdout.splitlines()
    assert [m.split()[:3] for m in mounts if "/var/jails/t" in m] == [["devfs", "/var/jails/t/dev", "tmpfs"]]
    assert "inet 10.0.0.1 netmask 0xffffffff" in root.run("/sbin/ifconfig", "lo1").stdout
    removed = root.run("/usr/sbin/jail", "-r", "t")
    assert (removed.returncode, removed.stdout) == (0, "t: removed\n")
    assert root.run("/usr/sbin/jls").stdout.count("\n") == 1
    assert "10.0.0.1" not in root.run("/sbin/ifconfig", "lo1").stdout
    assert "/var/jails/t" not in root.run("/bin/cat", "/proc/self/mounts").stdout


def test_unknown_parameter_refused(root, conf):
    conf("    allow.flying = 1;")
    result = root.run("/usr/sbin/jail", "-c", "t")
    assert (result.returncode, result.stderr) == (1, "jail: unknown parameter: allow.flying\n")
    assert root.run("/usr/sbin/jls", "-j", "t").returncode == 1


def _bounding_set(root):
    status = root.run("/usr/sbin/jexec", "t", "/bin/cat", "/proc/self/status")
    assert status.returncode == 0, status.stderr
    return int(next(line.split()[1] for line in status.stdout.splitlines() if line.startswith("CapBnd:")), 16)


CAP_NET_RAW = 1 << 13


@pytest.mark.parametrize("extra, raw", [("", False), ("    allow.noraw_sockets;", False),
                                        ("    allow.raw_sockets;", True)])
def test_raw_sockets_only_where_the_jail_allows_them(root, conf, extra, raw):
    """FreeBSD refuses raw sockets in a jail unless allow.raw_sockets (the lab: no CAP_NET_RAW in the jail)."""
    conf(extra)
    assert root.run("/usr/sbin/jail", "-c", "t").returncode == 0
    assert bool(_bounding_set(root) & CAP_NET_RAW) == raw
    params = root.run("/usr/sbin/jls", "-j", "t", "-n").stdout.split()
    assert ("allow.raw_sockets" if raw else "allow.noraw_sockets") in params


def test_system_v_ipc_parameters(root, conf):
    """sysvmsg/sysvsem/sysvshm take disable, new or inherit (or 0-2); jls prints the name; others are refused."""
    conf("    sysvmsg = disable;\n    sysvsem = 1;\n    sysvshm = inherit;")
    assert root.run("/usr/sbin/jail", "-c", "t").returncode == 0
    params = root.run("/usr/sbin/jls", "-j", "t", "-n").stdout.split()
    assert {"sysvmsg=disable", "sysvsem=new", "sysvshm=inherit"} <= set(params)
    root.run("/usr/sbin/jail", "-r", "t")
    conf("    sysvshm = shared;")
    result = root.run("/usr/sbin/jail", "-c", "t")
    assert (result.returncode, result.stderr) == (1, 'jail: sysvshm: unknown value "shared"\n')
    assert root.run("/usr/sbin/jls", "-j", "t").returncode == 1


def test_missing_mount_device_leaves_nothing_behind(root, conf):
    """The encrypted image locked: the mount parameter fails, and the address and devfs are taken back."""
    conf('    mount = "/dev/md9.eli /var/jails/t ufs rw 0 0";')
    result = root.run("/usr/sbin/jail", "-c", "t")
    assert result.returncode == 1
    assert "jail: t: /sbin/mount -t ufs -o rw /dev/md9.eli /var/jails/t: failed" in result.stderr
    assert "10.0.0.1" not in root.run("/sbin/ifconfig", "lo1").stdout
    assert root.run("/usr/sbin/jls").stdout.count("\n") == 1
    assert "/var/jails/t" not in root.run("/bin/cat", "/proc/self/mounts").stdout


def test_exec_hooks_run_in_jail8_order(root, conf):
    log = "/var/log/order"
    root.sh(f": > {log}")
    hooks = "\n".join(f'    exec.{hook} = "echo {hook} >> {log}";' for hook in
                      ("prestart", "poststart", "prestop", "poststop"))
    conf(hooks + '\n    exec.stop = "/bin/sh -c \'echo stop > /tmp/stopped\'";')
    assert root.run("/usr/sbin/jail", "-c", "t").returncode == 0
    assert root.read(log).split() == ["prestart", "poststart"]
    assert root.run("/usr/sbin/jail", "-r", "t").returncode == 0
    assert root.read(log).split() == ["prestart", "poststart", "prestop", "poststop"]
    assert root.read("/var/jails/t/tmp/stopped") == "stop\n"


def test_jail_without_processes_or_persist_ends(root, conf):
    root.write("/etc/jail.conf.d/t.conf", JAIL_CONF.format(extra="").replace("sleep 300 &", "true"))
    assert root.run("/usr/sbin/jail", "-c", "t").returncode == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and root.run("/usr/sbin/jls", "-j", "t").returncode == 0:
        time.sleep(0.2)
    assert root.run("/usr/sbin/jls", "-j", "t").returncode == 1


def test_persistent_jail_stays(root, conf):
    root.write("/etc/jail.conf.d/t.conf", JAIL_CONF.format(extra="    persist;").replace("sleep 300 &", "true"))
    assert root.run("/usr/sbin/jail", "-c", "t").returncode == 0
    time.sleep(1.2)
    assert "persist" in root.run("/usr/sbin/jls", "-n", "-j", "t").stdout.split()


def test_errors_and_refusals(root, conf):
    missing = root.run("/usr/sbin/jexec", "nope", "sh")
    assert (missing.returncode, missing.stderr) == (1, 'jexec: jail "nope" not found\n')
    gone = root.run("/usr/sbin/jail", "-r", "nope")
    assert (gone.returncode, gone.stderr) == (1, 'jail: "nope" not found\n')
    bad_flag = root.run("/usr/sbin/jail", "-x")
    assert bad_flag.returncode == 1 and bad_flag.stderr.startswith("jail: illegal option -- x\nusage: jail")
    assert root.run("/usr/sbin/jls", "-j", "nope").stderr == 'jls: jail "nope" not found\n'


def test_create_every_jail_of_a_file_and_other_listings(root, conf):
    root.write("/etc/jail.conf", JAIL_CONF.format(extra=""))
    root.sh("grep -q '^nobody:' /var/jails/t/etc/passwd || "
            "echo 'nobody:*:65534:65534:Unprivileged user:/nonexistent:/usr/sbin/nologin' >> /var/jails/t/etc/passwd")
    try:
        created = root.run("/usr/sbin/jail", "-c")
        assert (created.returncode, created.stdout) == (0, "t: created\n"), created.stderr
        named = root.run("/usr/sbin/jls", "-N").stdout.splitlines()
        assert named[0] == " JID              IP Address      Hostname                      Path"
        assert named[1].startswith(" t                10.0.0.1        t.example")
        verbose = root.run("/usr/sbin/jls", "-v").stdout.splitlines()
        assert verbose[:4] == ["   JID  Hostname                      Path", "        Name                          State",
                               "        CPUSetID", "        IP Address(es)"]
        assert verbose[5] == "        t                             ACTIVE" and verbose[7] == "        10.0.0.1"
        assert root.run("/usr/sbin/jls", "name", "host.hostname").stdout == "t t.example\n"
        assert root.run("/usr/sbin/jexec", "-U", "nobody", "t", "/bin/sh", "-c",
                        "cat /proc/self/status").stdout.count("65534") >= 2
    finally:
        root.sh("rm /etc/jail.conf")


def test_jail_processes_for_ps(root, conf):
    """ps -J asks lab.freebsd.jailinfo which jail a process runs in."""
    conf()
    assert root.run("/usr/sbin/jail", "-c", "t").returncode == 0
    script = ("import sys; sys.path.insert(0, '/usr/libexec/lab'); from lab.freebsd import jailinfo, jails\n"
              "jail = jails.find('t')\n"
              "inside = [p for p in jails.processes(jail) if jailinfo.jid_of(p) == jail['jid']]\n"
              "print(jailinfo.resolve('t') == jail['jid'], jailinfo.resolve('0'), jailinfo.resolve('nope'),\n"
              "      len(inside) >= 1, jailinfo.jid_of(1))")
    assert root.run("/usr/libexec/lab/bin/python3", "-c", script).stdout.split() == ["True", "0", "None", "True", "0"]
