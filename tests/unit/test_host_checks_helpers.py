"""The helpers of the host checks (tests/host/host_checks.py), without a server.

Parsers are fed what FreeBSD prints (sockstat, ps, pfctl, sysctl.conf, fstab options); the control-socket client
runs for real, in /bin/sh, against a real tor (Debian's) through a stand-in for FreeBSD's `nc -U`; the disk
searches run for real with the local find and grep over a temporary tree.
"""

import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import testinfra

import host_checks
from torjail.render import render_file
from torjail.settings import build_settings

REPO = Path(__file__).resolve().parents[2]

SOCKSTAT = """\
USER     COMMAND    PID   FD  PROTO  LOCAL ADDRESS         FOREIGN ADDRESS      
_tor     tor        2215  6   tcp4   10.0.0.1:9001         *:*
256      tor        2215  7   tcp4   10.0.0.1:9030         *:*
_tor     tor        2215  9   tcp6   2001:db8:10::10:9001  *:*
root     syslogd    1022  7   udp4   10.0.0.1:514          *:*
"""

PS = """\
USER   COMMAND
root   syslogd
_tor   tor
root   cron
"""

PFCTL_NV = """\
ext_if = "vtnet0"
jail_ip = "10.0.0.1"
table <admins> const { 198.51.100.0/24 }
table <bruteforce> persist
set block-policy drop
set skip on { lo0 }
scrub in all fragment reassemble
nat on vtnet0 inet from 10.0.0.1 to any -> (vtnet0) round-robin
rdr on vtnet0 inet proto tcp from any to 203.0.113.10 port = 9001 -> 10.0.0.1
rdr on vtnet0 inet proto tcp from any to 203.0.113.10 port = 9030 -> 10.0.0.1
block drop in quick on ! vtnet0 inet from 203.0.113.0/24 to any
block drop log all
pass in on vtnet0 proto tcp from <admins> to (vtnet0) port = ssh flags S/SA keep state \
(source-track rule, max-src-conn 10, max-src-conn-rate 15/60, overload <bruteforce> flush global, src.track 60)
"""

# What tor 0.4.9 answered on its control socket (captured from a real tor).
CONTROL_TRANSCRIPT = (
    "250 OK\r\n250-accounting/enabled=1\r\n250-accounting/hibernating=awake\r\n250 OK\r\n"
    "250-AccountingMax=1073741824000\r\n250-AccountingRule=sum\r\n250 AccountingStart=month 1 00:00\r\n"
    '552 Unrecognized key "nosuch"\r\n250 closing connection\r\n'
)

# FreeBSD's `nc -w N -U PATH`: send standard input to a unix socket, print what comes back until it closes.
NC_STAND_IN = """\
#!{python}
import socket, sys
args = sys.argv[1:]
if len(args) != 4 or args[0] != "-w" or args[2] != "-U":
    sys.exit("nc stand-in: only -w N -U PATH")
conn = socket.socket(socket.AF_UNIX)
conn.settimeout(int(args[1]))
conn.connect(args[3])
conn.sendall(sys.stdin.buffer.read())
while True:
    data = conn.recv(65536)
    if not data:
        break
    sys.stdout.buffer.write(data)
"""


def settings(**overrides):
    data = {"identity": "on-relay", "relay_nickname": "Test1", "relay_contact": "ops@example.org", "public_ipv4": "203.0.113.10"}
    return build_settings("relay1.example.org", {**data, **overrides})


def fake_config(**options):
    return SimpleNamespace(stash=pytest.Stash(), getoption=lambda name, default=None: options.get(name, default))


# ----------------------------------------------------------------------------- the server and its settings

@pytest.mark.parametrize("spec, name", [
    ("ssh://relay1.example.org", "relay1.example.org"),
    ("ssh://root@relay1.example.org:2222", "relay1.example.org"),
    ("paramiko://admin@[2001:db8::1]:22", "2001:db8::1"),
    ("relay2", "relay2"),
])
def test_spec_host_name(spec, name):
    assert host_checks.spec_host_name(spec) == name


def test_settings_for_run_reads_the_inventory(monkeypatch):
    monkeypatch.chdir(REPO)
    config = fake_config(hosts="ssh://relay2.example.org", inventory="inventory.py")
    found = host_checks.settings_for_run(config)
    assert (found.host_name, found.ext_if, found.exit_relay) == ("relay2.example.org", "igb0", True)
    assert host_checks.settings_for_run(config) is found


def test_settings_for_run_matches_ssh_hostname(tmp_path, monkeypatch):
    (tmp_path / "inventory.py").write_text(textwrap.dedent("""\
        relays = [("lab1", {"ssh_hostname": "198.18.0.2", "identity": "on-relay", "relay_nickname": "Lab1",
                            "relay_contact": "lab@example.org", "public_ipv4": "198.51.100.7"})]
    """))
    monkeypatch.chdir(tmp_path)
    found = host_checks.settings_for_run(fake_config(hosts="ssh://198.18.0.2"))
    assert found.host_name == "lab1"


def test_settings_for_run_refuses_unknown_and_several_hosts(monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(pytest.UsageError, match="--inventory-host"):
        host_checks.settings_for_run(fake_config(hosts="ssh://elsewhere.example.org"))
    with pytest.raises(pytest.UsageError, match="one server per run"):
        host_checks.settings_for_run(fake_config(hosts="ssh://a,ssh://b"))
    assert host_checks.settings_for_run(fake_config()) is None


def test_inventory_host_option_wins(monkeypatch):
    monkeypatch.chdir(REPO)
    config = fake_config(hosts="ssh://lab", inventory_host="relay1.example.org")
    assert host_checks.settings_for_run(config).relay_nickname == "ExampleRelay1"


def test_outside_needs_option_or_environment(monkeypatch):
    monkeypatch.delenv(host_checks.OUTSIDE_ENV, raising=False)
    assert not host_checks.outside_allowed(fake_config())
    assert host_checks.outside_allowed(fake_config(outside=True))
    monkeypatch.setenv(host_checks.OUTSIDE_ENV, "1")
    assert host_checks.outside_allowed(fake_config())


# ----------------------------------------------------------------------------- parsers

def test_parse_sockstat():
    sockets = host_checks.parse_sockstat(SOCKSTAT)
    assert [(s["user"], s["command"], s["proto"], s["address"], s["port"]) for s in sockets] == [
        ("_tor", "tor", "tcp4", "10.0.0.1", "9001"),
        ("256", "tor", "tcp4", "10.0.0.1", "9030"),
        ("_tor", "tor", "tcp6", "2001:db8:10::10", "9001"),
        ("root", "syslogd", "udp4", "10.0.0.1", "514"),
    ]
    assert host_checks.parse_sockstat("USER COMMAND PID FD PROTO LOCAL ADDRESS FOREIGN ADDRESS\n") == []


def test_parse_ps():
    assert host_checks.parse_ps(PS) == [("root", "syslogd"), ("_tor", "tor"), ("root", "cron")]


def test_parse_sysctl_conf():
    text = "# relay\nkern.ipc.somaxconn=1024\nkern.ipc.somaxconn=4096 # raised\n\nnet.inet.ip.random_id=1\n"
    assert host_checks.parse_sysctl_conf(text) == {"kern.ipc.somaxconn": "4096", "net.inet.ip.random_id": "1"}


def test_parse_options():
    assert host_checks.parse_options("sw,file=/usr/swap0,late,ealgo=AES-XTS,keylen=256") == {
        "sw": "", "file": "/usr/swap0", "late": "", "ealgo": "AES-XTS", "keylen": "256"}


def test_parse_jail_conf_parameters_of_the_rendered_file():
    parameters = host_checks.parse_jail_conf_parameters(render_file(settings(), "jail.conf.j2"))
    assert {name: parameters[name] for name in
            ("path", "host.hostname", "securelevel", "enforce_statfs", "devfs_ruleset", "children.max")} == {
        "path": "/var/jails/tor", "host.hostname": "tor", "securelevel": "3", "enforce_statfs": "2",
        "devfs_ruleset": "4", "children.max": "0"}


def test_pf_rule_lines_leave_out_macros_tables_and_options():
    lines = host_checks.pf_rule_lines(PFCTL_NV)
    assert [host_checks.pf_rule_kind(line) for line in lines] == [
        "scrub", "nat", "rdr", "rdr", "block", "block", "pass"]
    assert lines[2] == "rdr on vtnet0 inet proto tcp from any to 203.0.113.10 port = 9001 -> 10.0.0.1"
    assert host_checks.pf_rule_lines("  pass   in  all \n") == ["pass in all"]
    assert host_checks.pf_rule_kind("match in all scrub (no-df)") == "scrub"


def test_pf_tables_of_the_rendered_file():
    assert host_checks.pf_tables(render_file(settings(), "pf.conf.j2")) == ["admins", "bruteforce"]


def test_parse_pf_table():
    assert host_checks.parse_pf_table("   198.51.100.0/24\n   2001:db8:ffff::/48\n") == [
        "198.51.100.0/24", "2001:db8:ffff::/48"]


# ----------------------------------------------------------------------------- tor's control socket

def test_parse_control_replies():
    replies = host_checks.parse_control_replies(CONTROL_TRANSCRIPT)
    assert replies.authenticated
    assert replies.values == {"accounting/enabled": "1", "accounting/hibernating": "awake",
                              "AccountingMax": "1073741824000", "AccountingRule": "sum",
                              "AccountingStart": "month 1 00:00"}
    assert replies.errors == ['552 Unrecognized key "nosuch"']


def test_parse_control_replies_refused_and_empty():
    refused = host_checks.parse_control_replies("515 Authentication failed: Wrong length on authentication cookie.\r\n")
    assert (refused.authenticated, refused.values) == (False, {})
    assert refused.errors == ["515 Authentication failed: Wrong length on authentication cookie."]
    assert host_checks.parse_control_replies("").errors == ["no answer to AUTHENTICATE"]


def test_parse_control_replies_data_reply():
    text = "250 OK\r\n250+config-text=\r\nSocksPort 0\r\n..dotted\r\n.\r\n250 OK\r\n"
    assert host_checks.parse_control_replies(text).values == {"config-text": "SocksPort 0\n.dotted"}


def test_control_script_refuses_odd_queries():
    with pytest.raises(ValueError):
        host_checks.control_script(["GETINFO '; reboot"])


@pytest.fixture
def live_tor(tmp_path):
    """A real tor (no network) with a control socket and cookie, as templates/torrc.j2 sets them up."""
    if shutil.which("tor") is None:
        pytest.skip("tor is not installed")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (tmp_path / "torrc").write_text(textwrap.dedent(f"""\
        DataDirectory {data}
        ControlSocket {data}/control
        CookieAuthentication 1
        SocksPort 0
        DisableNetwork 1
        AccountingMax 1000 GBytes
        AccountingStart month 1 00:00
        AccountingRule sum
        Log notice file {tmp_path}/notices.log
    """))
    tor = subprocess.Popen(["tor", "-f", str(tmp_path / "torrc"), "--defaults-torrc", "/dev/null"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not ((data / "control").exists() and (data / "control_auth_cookie").exists()):
        if time.monotonic() > deadline or tor.poll() is not None:
            tor.kill()
            pytest.fail(f"tor did not open its control socket: {(tmp_path / 'notices.log').read_text()}")
        time.sleep(0.2)
    yield data
    tor.terminate()
    tor.wait(timeout=30)


def test_control_script_against_real_tor(tmp_path, live_tor):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    nc = bin_dir / "nc"
    nc.write_text(NC_STAND_IN.format(python=sys.executable))
    nc.chmod(nc.stat().st_mode | stat.S_IXUSR)
    script = host_checks.control_script(
        ["GETINFO accounting/enabled accounting/hibernating", "GETCONF AccountingMax AccountingRule AccountingStart"],
        socket=str(live_tor / "control"), cookie=str(live_tor / "control_auth_cookie"))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    replies = host_checks.parse_control_replies(result.stdout)
    assert replies.authenticated, (result.stdout, result.stderr)
    assert replies.values == {"accounting/enabled": "1", "accounting/hibernating": "awake",
                              "AccountingMax": str(1000 * 2**30), "AccountingRule": "sum",
                              "AccountingStart": "month 1 00:00"}
    cookie = (live_tor / "control_auth_cookie").read_bytes().hex()
    assert cookie not in script


def test_control_script_with_a_wrong_cookie(tmp_path, live_tor):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nc").write_text(NC_STAND_IN.format(python=sys.executable))
    (bin_dir / "nc").chmod(0o755)
    wrong = tmp_path / "wrong_cookie"
    wrong.write_bytes(b"\0" * 32)
    script = host_checks.control_script(["GETINFO accounting/enabled"], socket=str(live_tor / "control"),
                                        cookie=str(wrong))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    replies = host_checks.parse_control_replies(result.stdout)
    assert not replies.authenticated and replies.errors[0].startswith("515 ")


# ----------------------------------------------------------------------------- the unencrypted disk

def test_unencrypted_exclusions():
    mounts = {"/": {"type": "ufs"}, "/dev": {"type": "devfs"}, "/tmp": {"type": "tmpfs"},
              "/var/jails/tor": {"type": "ufs"}, "/var/jails/tor/dev": {"type": "devfs"}, "/home": {"type": "zfs"}}
    assert host_checks.unencrypted_exclusions(mounts, settings()) == [
        "/dev", "/proc", "/tmp", "/var/jails/tor", "/var/jails/tor.img", "/var/jails/tor/dev"]


def test_search_roots_cover_all_but_the_excluded():
    tree = {"/": ["/bin", "/dev", "/var", "/usr"], "/var": ["/var/log", "/var/jails"],
            "/var/jails": ["/var/jails/tor", "/var/jails/tor.img", "/var/jails/notes"]}
    listed = []

    def list_dir(path):
        listed.append(path)
        return tree[path]

    roots = host_checks.search_roots(["/dev", "/var/jails/tor", "/var/jails/tor.img"], list_dir)
    assert roots == ["/bin", "/usr", "/var/jails/notes", "/var/log"]
    assert listed == ["/", "/var", "/var/jails"]


@pytest.fixture
def local_host():
    return testinfra.get_host("local://")


@pytest.fixture
def disk(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "rc.local").write_text("echo start\n")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "history").write_text("ls\ngeli attach -j - md10 <<< correct horse battery\n")
    (tmp_path / "root" / "md10.key").write_bytes(b"\x01" * 64)
    (tmp_path / "usr" / "src" / "crypto").mkdir(parents=True)
    (tmp_path / "usr" / "src" / "crypto" / "test.key").write_text("test key\n")
    (tmp_path / "var" / "backups").mkdir(parents=True)
    (tmp_path / "var" / "backups" / "md10.eli").write_bytes(b"GEOM::ELI" + b"\0" * 503)
    return tmp_path


def test_run_with_input_passes_data_on_stdin(local_host):
    result = host_checks.run_with_input(local_host, "wc -c", b"12345\n", timeout=30)
    assert (result.returncode, result.stdout.split()) == (0, [b"6"])


def test_find_named_files(local_host, disk):
    paths = [str(disk / "etc"), str(disk / "root"), str(disk / "usr"), str(disk / "var")]
    found = host_checks.find_named_files(local_host, paths, ["*.key", "*.passphrase"], [str(disk / "usr" / "src")])
    assert found == [str(disk / "root" / "md10.key")]
    assert host_checks.find_named_files(local_host, paths, ["*.eli"]) == [str(disk / "var" / "backups" / "md10.eli")]


def test_search_for_secret(local_host, disk, monkeypatch):
    paths = [str(disk / "etc"), str(disk / "root"), str(disk / "var")]
    monkeypatch.delenv("TEST_SECRET", raising=False)
    assert host_checks.search_for_secret(local_host, "TEST_SECRET", paths) is None
    monkeypatch.setenv("TEST_SECRET", "correct horse battery")
    found = host_checks.search_for_secret(local_host, "TEST_SECRET", paths)
    assert (found.files, found.complete) == ([str(disk / "root" / "history")], True)
    monkeypatch.setenv("TEST_SECRET", "correct horse battery staple")
    clean = host_checks.search_for_secret(local_host, "TEST_SECRET", paths)
    assert (clean.files, clean.complete, clean.errors) == ([], True, "")
