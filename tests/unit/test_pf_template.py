"""pf.conf as pf reads it: who sshd's rate limit can lock out, and the address the relay's traffic leaves from.

Each rendered file is parsed by the lab's pf parser (written apart from the product, from pf.conf(5)) and its
rules read in pfctl's normalised form, in pf's order of evaluation.
"""

import pytest
from test_pf_cross_check import lab_interfaces  # noqa: F401 (autouse: the interfaces the lab parser resolves)

from lab.freebsd import pfconf
from torjail.render import render_file
from torjail.settings import build_settings

BASE = {"identity": "on-relay", "relay_nickname": "EdgeRelay", "relay_contact": "ops@example.org", "public_ipv4": "198.51.100.7"}
NARROW = [["198.51.100.0/24"], ["198.51.100.0/24", "2001:db8:9::/48"], ["2001:db8:9::/48"]]
WORLD = [["0.0.0.0/0", "::/0"], ["0.0.0.0/0"], ["198.51.100.0/24", "::/0"]]


def _rules(overrides):
    text = render_file(build_settings("edge", {**BASE, **overrides}), "pf.conf.j2")
    ruleset = pfconf.parse(text, "/etc/pf.conf")
    return ruleset, [pfconf.format_rule(rule) for rule in ruleset["rules"]]


def _sshd_passes(lines):
    return [number for number, line in enumerate(lines) if line.startswith("pass in") and "<admins>" in line
            and "port = ssh" in line]


@pytest.mark.parametrize("networks", NARROW, ids=["v4", "v4-v6", "v6"])
def test_narrow_admin_networks_are_never_overload_blocked(networks):
    """An operator in admin_networks who opens a few sessions at once must not land in <bruteforce>; and an
    address put there by hand must not cut the operator off sshd either: the admins' quick pass comes first."""
    ruleset, lines = _rules({"admin_networks": networks})
    assert not [rule for rule in ruleset["rules"] if rule.get("state_options", {}).get("overload")]
    block = next(number for number, line in enumerate(lines) if "from <bruteforce>" in line)
    (sshd,) = _sshd_passes(lines)
    assert sshd < block and ruleset["rules"][sshd]["quick"], lines


@pytest.mark.parametrize("networks", WORLD, ids=["both", "v4", "mixed"])
def test_a_world_wide_sshd_keeps_its_rate_limit_without_flushing_open_sessions(networks):
    """`flush global` killed every state of an offender, the operator's own open sessions included."""
    ruleset, lines = _rules({"admin_networks": networks})
    (sshd,) = _sshd_passes(lines)
    overload = ruleset["rules"][sshd]["state_options"]["overload"]
    assert overload == {"table": "bruteforce", "flush": None}
    assert not ruleset["rules"][sshd]["quick"]


@pytest.mark.parametrize("networks", [["198.51.100.0/24", "::/0"], ["0.0.0.0/0", "2001:db8:9::/48", "198.51.100.0/24"]],
                         ids=["v4-narrow-v6-world", "v4-world-two-narrow"])
def test_narrow_networks_beside_the_world_still_pass_before_bruteforce(networks):
    """admin_networks mixing the world of one family with the operator's own network of another: the world is
    rate-limited, but the operator's network passes sshd first, never overload-blocked."""
    ruleset, lines = _rules({"admin_networks": networks})
    block = next(number for number, line in enumerate(lines) if "from <bruteforce>" in line)
    narrow = [network for network in networks if not network.endswith("/0")]
    passes = [number for number, line in enumerate(lines) if line.startswith("pass in quick")
              and "port = ssh" in line]
    assert len(passes) == len(narrow), lines
    for number, network in zip(passes, narrow):
        rule = ruleset["rules"][number]
        assert number < block and network.split("/")[0] in lines[number], lines
        assert not rule.get("state_options", {}).get("overload"), lines[number]


def test_the_jail_traffic_leaves_from_public_ipv4():
    """nat to ($ext_if) takes the interface's first address, which need not be the relay's public_ipv4 (an
    interface with several addresses): the relay's traffic must leave from the address it advertises."""
    ruleset, _lines = _rules({"public_ipv4": "198.51.100.9"})
    (nat,) = [rule for rule in ruleset["nat"] if rule["action"] == "nat"]
    assert "-> 198.51.100.9" in pfconf.format_rule(nat), pfconf.format_rule(nat)


def test_metrics_port_is_redirected_and_passed_only_from_metrics_networks():
    """tor's MetricsPort tells about the relay's traffic: pf redirects it to the jail, and passes it, only from
    the networks in metrics_networks; without metrics_port nothing of it is in pf.conf."""
    networks = ["198.51.100.0/24", "203.0.113.9/32"]
    ruleset, lines = _rules({"metrics_port": 9035, "metrics_networks": networks})
    text = render_file(build_settings("edge", {**BASE, "metrics_port": 9035, "metrics_networks": networks}),
                       "pf.conf.j2")
    assert "table <metrics> const { 198.51.100.0/24, 203.0.113.9/32 }" in text.splitlines()
    (rdr,) = [pfconf.format_rule(rule) for rule in ruleset["nat"] if rule["action"] == "rdr" and "9035" in
              pfconf.format_rule(rule)]
    assert "from <metrics>" in rdr and "-> 10.0.0.1" in rdr, rdr
    passes = [line for line in lines if "9035" in line]
    assert passes and all(line.startswith("pass in") and "from <metrics>" in line for line in passes), passes
    plain, plain_lines = _rules({})
    assert not any("9035" in line for line in plain_lines)
    assert not [rule for rule in plain["nat"] if "metrics" in pfconf.format_rule(rule)]



@pytest.mark.parametrize("overrides", [{}, {"public_ipv6": "2001:db8:1::7"}, {"sshd_port": 2222}],
                         ids=["v4", "v6", "port"])
def test_the_jail_cannot_open_connections_to_the_host_but_the_host_loopback_passes(overrides):
    """pf filters lo0 (no `set skip`): the jail's address is blocked towards sshd on lo0 and the jail's own
    interface and towards every other host address on lo0, before antispoof and before the host's own lo0
    traffic passes; nothing else skips lo0."""
    ruleset, lines = _rules(overrides)
    assert "skip" not in ruleset["options"]
    port = "ssh" if "sshd_port" not in overrides else "2222"
    lo0 = [number for number, line in enumerate(lines) if " on lo0 " in line or line.startswith("block")
           and " on lo1 " in line]
    antispoof = next(number for number, line in enumerate(lines) if "on ! vtnet0" in line)
    assert lo0 and max(lo0) < antispoof, lines
    wanted = [f"block drop in log quick on lo0 inet proto tcp from 10.0.0.1 to any port = {port}",
              f"block drop in log quick on lo1 inet proto tcp from 10.0.0.1 to any port = {port}",
              "block drop in log quick on lo0 inet from 10.0.0.1 to ! 10.0.0.1",
              "pass quick on lo0 all flags S/SA keep state"]
    if "public_ipv6" in overrides:
        wanted.insert(2, f"block drop in log quick on lo0 inet6 proto tcp from 2001:db8:1::7 to any port = {port}")
    assert [lines[number] for number in lo0] == wanted, lines


def test_several_relays_each_get_their_ports_redirected_to_their_own_jail():
    """A host of two relay jails: each relay's ORPort (and DirPort, MetricsPort) is redirected and passed to its
    own jail's address, each jail's traffic leaves from public_ipv4, and each is kept off the host's services."""
    jails = [{"kind": "relay", "jail_name": "tor", "jail_ip": "10.0.0.1", "md_unit": 10, "relay_nickname": "One",
              "public_ipv6": "2001:db8:1::7"},
             {"kind": "relay", "jail_name": "tor2", "jail_ip": "10.0.0.2", "md_unit": 11, "relay_nickname": "Two",
              "or_port": 9002, "dir_port": 0, "metrics_port": 9036, "metrics_networks": ["203.0.113.9/32"],
              "public_ipv6": "2001:db8:1::8"}]
    data = {**{key: value for key, value in BASE.items() if key != "relay_nickname"}, "jails": jails,
            "family": "fleet", "age_recipient": "age19s9uupdwtthy8lqxy2uefcjzyrffx9wu0dmfxjec8dzjnehea38q7hxyad"}
    text = render_file(build_settings("edge", data), "pf.conf.j2")
    ruleset = pfconf.parse(text, "/etc/pf.conf")
    nat = [pfconf.format_rule(rule) for rule in ruleset["nat"]]
    lines = [pfconf.format_rule(rule) for rule in ruleset["rules"]]
    assert [line for line in nat if line.startswith("nat ")] == [
        f"nat on vtnet0 inet from {jail} to any -> 198.51.100.7" for jail in ("10.0.0.1", "10.0.0.2")]
    rdr = [line for line in nat if line.startswith("rdr ")]
    assert any("port = 9001" in line and line.endswith("-> 10.0.0.1") for line in rdr), rdr
    assert any("port = 9030" in line and line.endswith("-> 10.0.0.1") for line in rdr), rdr
    assert any("port = 9002" in line and line.endswith("-> 10.0.0.2") for line in rdr), rdr
    assert any("<metrics2>" in line and "port = 9036" in line and line.endswith("-> 10.0.0.2") for line in rdr)
    assert not any("9002" in line and "10.0.0.1" in line for line in rdr + lines)
    assert any(line.startswith("pass in") and "to 10.0.0.2 port = 9002" in line for line in lines), lines
    assert any(line.startswith("pass in") and "inet6" in line and "to 2001:db8:1::8 port = 9002" in line
               for line in lines), lines
    for jail in ("10.0.0.1", "10.0.0.2"):
        assert f"block drop in log quick on lo0 inet from {jail} to ! {jail}" in lines
        assert f"block drop in log quick on lo1 inet proto tcp from {jail} to any port = ssh" in lines
    assert "table <metrics2> const { 203.0.113.9/32 }" in text.splitlines()
