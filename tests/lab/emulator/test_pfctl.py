"""pfctl in a private root: parse-only checks, loading, normalised rules, info format, tables, exit codes."""

import os
import re
import time

import pytest

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]

PF_CONF = """\
ext_if = "vtnet0"
jail_if = "lo1"
jail_ip = "10.0.0.1"
relay_ports = "{ 9001 9030 }"
table <admins> const { 198.18.0.0/15, 192.0.2.7 }
table <bruteforce> persist
set block-policy drop
set skip on lo0
set loginterface $ext_if
set reassemble yes
scrub in all
nat on $ext_if inet from $jail_ip to any -> ($ext_if)
rdr on $ext_if inet proto tcp from any to ($ext_if) port $relay_ports -> $jail_ip
antispoof quick for $ext_if
block log all
block in quick log on $ext_if from <bruteforce> to any
pass out quick on $ext_if keep state
pass quick on $jail_if
pass in on $ext_if proto tcp from <admins> to ($ext_if) port 22 flags S/SA keep state \\
    (max-src-conn 10, max-src-conn-rate 3/60, overload <bruteforce> flush global)
pass in on $ext_if inet proto tcp from any to $jail_ip port $relay_ports flags S/SA synproxy state
pass in on $ext_if inet proto icmp icmp-type { echoreq unreach } keep state
"""

EXPECTED_RULES = """\
scrub in all fragment reassemble
block drop in quick on ! vtnet0 inet from 198.18.99.0/24 to any
block drop in quick inet from 198.18.99.2 to any
block drop log all
block drop in log quick on vtnet0 from <bruteforce> to any
pass out quick on vtnet0 all flags S/SA keep state
pass quick on lo1 all flags S/SA keep state
pass in on vtnet0 proto tcp from <admins> to (vtnet0) port = ssh flags S/SA keep state \
(source-track rule, max-src-conn 10, max-src-conn-rate 3/60, overload <bruteforce> flush global, src.track 60)
pass in on vtnet0 inet proto tcp from any to 10.0.0.1 port = 9001 flags S/SA synproxy state
pass in on vtnet0 inet proto tcp from any to 10.0.0.1 port = 9030 flags S/SA synproxy state
pass in on vtnet0 inet proto icmp all icmp-type echoreq keep state
pass in on vtnet0 inet proto icmp all icmp-type unreach keep state
"""

EXPECTED_NAT = """\
nat on vtnet0 inet from 10.0.0.1 to any -> (vtnet0) round-robin
rdr on vtnet0 inet proto tcp from any to (vtnet0) port = 9001 -> 10.0.0.1
rdr on vtnet0 inet proto tcp from any to (vtnet0) port = 9030 -> 10.0.0.1
"""


@pytest.fixture(scope="module")
def root():
    from network_root import NetworkRoot

    lab_root = NetworkRoot()
    lab_root.write("/etc/pf.conf", PF_CONF)
    yield lab_root
    lab_root.close()


def pfctl(root, *args):
    return root.run("/sbin/pfctl", *args)


def test_check_only_loads_nothing(root):
    result = pfctl(root, "-n", "-f", "/etc/pf.conf")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    unloaded = pfctl(root, "-s", "info")
    assert (unloaded.returncode, unloaded.stderr) == (1, "pfctl: /dev/pf: No such file or directory\n")
    assert root.run("/sbin/kldload", "pf").returncode == 0
    assert pfctl(root, "-s", "rules").stdout == ""


def test_load_and_show_normalised_rules(root):
    assert pfctl(root, "-f", "/etc/pf.conf").returncode == 0
    assert pfctl(root, "-s", "rules").stdout == EXPECTED_RULES
    assert pfctl(root, "-sn").stdout == EXPECTED_NAT
    assert pfctl(root, "-s", "Tables").stdout == "admins\nbruteforce\n"
    assert pfctl(root, "-t", "admins", "-T", "show").stdout == "   192.0.2.7\n   198.18.0.0/15\n" or \
        pfctl(root, "-t", "admins", "-T", "show").stdout == "   198.18.0.0/15\n   192.0.2.7\n"


def test_syntax_errors_name_file_and_line(root):
    root.write("/etc/pf.bad", "set skip on lo0\npass in all\nblock in bogus\nscrub in all\npass from $nope\n")
    checked = pfctl(root, "-nf", "/etc/pf.bad")
    assert checked.returncode == 1
    assert checked.stderr.splitlines() == [
        "/etc/pf.bad:3: syntax error",
        "/etc/pf.bad:4: Rules must be in order: options, ethernet, normalization, queueing, translation, filtering",
        "/etc/pf.bad:5: macro 'nope' not defined"]
    loaded = pfctl(root, "-f", "/etc/pf.bad")
    assert loaded.returncode == 1
    assert loaded.stderr.endswith("pfctl: Syntax error in config file: pf rules not loaded\n")


@pytest.mark.parametrize("line, message", [
    ("pass in from 10.0.0.1/33 to any", "could not parse host specification"),
    ("pass in to any port 22", "port only applies to tcp/udp"),
    ("pass in proto udp to any port 53 flags S/SA", "flags only apply to tcp"),
    ("pass in proto tcp to any port nosuchservice", "unknown port nosuchservice"),
])
def test_rule_errors(root, line, message):
    root.write("/etc/pf.one", line + "\n")
    result = pfctl(root, "-nf", "/etc/pf.one")
    assert (result.returncode, result.stderr) == (1, f"/etc/pf.one:1: {message}\n")


def test_enable_disable_and_info_format(root):
    disabled = pfctl(root, "-s", "info").stdout.splitlines()
    assert re.fullmatch(r"Status: Disabled( for 0 days 00:00:\d\d)? +Debug: Urgent", disabled[0])
    enabled = pfctl(root, "-e")
    assert (enabled.returncode, enabled.stderr) == (0, "pf enabled\n")
    again = pfctl(root, "-e")
    assert (again.returncode, again.stderr) == (1, "pfctl: pf already enabled\n")
    info = pfctl(root, "-s", "info").stdout.splitlines()
    assert len(info[0]) == 59 and info[0].startswith("Status: Enabled for 0 days 00:00:")
    assert info[0].endswith("           Debug: Urgent")
    assert info[2] == "Interface Stats for vtnet0" + " " * 12 + "IPv4" + " " * 13 + "IPv6"
    assert "State Table                          Total             Rate" in info
    assert any(re.fullmatch(r"  searches {31}0 ( {14}| {11}0\.0/s)", line) for line in info)
    assert pfctl(root, "-d").stderr == "pf disabled\n"


def test_tables_add_delete_flush(root):
    added = pfctl(root, "-t", "bruteforce", "-T", "add", "203.0.113.9")
    assert (added.returncode, added.stderr) == (0, "1/1 addresses added.\n")
    assert pfctl(root, "-t", "bruteforce", "-T", "show").stdout == "   203.0.113.9\n"
    assert pfctl(root, "-t", "bruteforce", "-T", "delete", "203.0.113.9").stderr == "1/1 addresses deleted.\n"
    missing = pfctl(root, "-t", "nosuch", "-T", "show")
    assert (missing.returncode, missing.stderr) == (1, "pfctl: Table does not exist.\n")


def test_flush_all_and_refusals(root):
    flushed = pfctl(root, "-F", "all")
    assert flushed.returncode == 0
    assert flushed.stderr.splitlines()[:3] == ["rules cleared", "nat cleared", "2 tables deleted."]
    assert pfctl(root, "-s", "rules").stdout == ""
    bad_show = pfctl(root, "-s", "tables")
    assert bad_show.returncode == 1 and bad_show.stderr.startswith("pfctl: Unknown show modifier 'tables'\n")
    bad_flag = pfctl(root, "-y")
    assert bad_flag.returncode == 1 and bad_flag.stderr.startswith("pfctl: illegal option -- y\nusage: pfctl")


def test_table_expire_removes_entries_older_than_the_lifetime(root):
    """pfctl_table.c: an entry expires when more than SECONDS have passed since it was added (its statistics'
    tzero); the message counts the deleted entries over the candidates."""
    assert pfctl(root, "-f", "/etc/pf.conf").returncode == 0
    assert pfctl(root, "-t", "bruteforce", "-T", "add", "203.0.113.1").returncode == 0
    time.sleep(2.2)
    assert pfctl(root, "-t", "bruteforce", "-T", "add", "203.0.113.2").returncode == 0
    kept = pfctl(root, "-t", "bruteforce", "-T", "expire", "3600")
    assert (kept.returncode, kept.stderr) == (0, "0/0 addresses expired.\n")
    expired = pfctl(root, "-t", "bruteforce", "-T", "expire", "1")
    assert (expired.returncode, expired.stderr) == (0, "1/1 addresses expired.\n")
    assert pfctl(root, "-t", "bruteforce", "-T", "show").stdout == "   203.0.113.2\n"
    quiet = pfctl(root, "-q", "-t", "bruteforce", "-T", "expire", "0")
    assert (quiet.returncode, quiet.stderr) == (0, "")


@pytest.mark.parametrize("args, message", [
    (["x"], "pfctl: expiry time: invalid\n"),
    (["--", "-1"], "pfctl: expiry time: too small\n"),
    (["4294967296"], "pfctl: expiry time: too large\n"),
])
def test_table_expire_refuses_what_strtonum_refuses(root, args, message):
    result = pfctl(root, "-t", "bruteforce", "-T", "expire", *args)
    assert (result.returncode, result.stderr) == (1, message)


def test_table_expire_takes_exactly_one_lifetime(root):
    result = pfctl(root, "-t", "bruteforce", "-T", "expire")
    assert result.returncode == 1 and result.stderr.startswith("usage: pfctl")
    missing = pfctl(root, "-t", "nosuch", "-T", "expire", "60")
    assert (missing.returncode, missing.stderr) == (1, "pfctl: Table does not exist.\n")
