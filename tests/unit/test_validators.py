"""The jail.conf and rc.conf validators reject what jail(8) and rc(8) would choke on."""

import pytest

from torjail.checks.jailconf import check_jail_conf
from torjail.checks.rcconf import check_rc_conf
from torjail.render import render_all
from torjail.settings import build_settings

SETTINGS = build_settings("r", {"identity": "on-relay", "relay_nickname": "R", "relay_contact": "c", "public_ipv4": "198.51.100.7"})
JAIL_CONF = next(f.content for f in render_all(SETTINGS) if f.kind == "jail.conf")


@pytest.mark.parametrize("old, new, fragment", [
    ("securelevel = 3", "securelevel = 5", "securelevel expects a whole number -1..3"),
    ("enforce_statfs = 2", "enforce_statf = 2", "unknown parameter: enforce_statf"),
    ('path = "/var/jails/tor";', 'path = "/var/jails/tor"', "syntax error"),
    ("10.0.0.1/32", "10.0.0.300/32", "invalid address"),
    ("/bin/sh /etc/rc\"", "/bin/sh /etc/rc", "syntax error"),
    ("devfs_ruleset = 4", "devfs_ruleset = four", "devfs_ruleset expects"),
    ('    path = "/var/jails/tor";\n', "", "missing path"),
    ("sysvshm = disable", "sysvshm = shared", "sysvshm expects disable, new or inherit"),
    ("sysvmsg = disable", "sysvmsg", "sysvmsg expects disable, new or inherit"),
    ("allow.noraw_sockets;", "allow.noraw_sockets = 1;", "a negated boolean takes no value"),
    ("allow.noraw_sockets;", "allow.noraw_socket;", "unknown parameter: allow.noraw_socket"),
])
def test_jail_conf_breakage_is_rejected(old, new, fragment):
    assert old in JAIL_CONF
    problems = check_jail_conf(JAIL_CONF.replace(old, new, 1))
    assert any(fragment in problem for problem in problems), problems


def test_generated_jail_conf_is_valid():
    assert check_jail_conf(JAIL_CONF) == []


def test_generated_jail_conf_hardens_the_jail():
    """The handbook's and the relay guide's walls: a nosuid root, no raw sockets, no System V IPC."""
    lines = [line.strip() for line in JAIL_CONF.splitlines()]
    assert 'mount = "/dev/md10.eli /var/jails/tor ufs rw,nosuid 0 0";' in lines
    for wall in ("allow.noraw_sockets;", "sysvmsg = disable;", "sysvsem = disable;", "sysvshm = disable;"):
        assert wall in lines


@pytest.mark.parametrize("text, fragment", [
    ('tor_enable="YES\n', "Unterminated quoted string"),
    ("tor_enable=YES\n", 'expected name="value"'),
    ('echo hello\n', 'expected name="value"'),
    ('tor_flags="$(touch /tmp/torjail-must-not-exist)"\n', 'expected name="value"'),
])
def test_rc_conf_breakage_is_rejected(text, fragment, tmp_path):
    problems = check_rc_conf(text)
    assert any(fragment in problem for problem in problems), problems


def test_rc_conf_with_commands_is_never_sourced(tmp_path):
    marker = tmp_path / "ran"
    check_rc_conf(f'x="$(touch {marker})"\n')
    assert not marker.exists()
