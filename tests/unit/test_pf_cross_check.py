"""The project's pf checker and the lab's pf parser check each other.

They were written apart (the lab never imports the product), so a pf.conf both accept, and a broken one both
refuse at the same line, is evidence that each reads pf.conf(5) as pfctl does. Every pf.conf the project
renders in its template tests must pass both; broken variants of a rendered file must fail both.
"""

import json
import re

import pytest
from test_templates import CASES, _example_settings

from lab.freebsd import netif, pfconf
from torjail.checks.pf import check_pf_conf
from torjail.render import render_all

FILENAME = "/etc/pf.conf"


def _pf_conf(settings):
    return next(f.content for f in render_all(settings) if f.kind == "pf.conf")


RENDERED = [(s.host_name.split(".")[0], _pf_conf(s)) for s in _example_settings()]
RENDERED += [(f"edge-{name}", _pf_conf(settings)) for name, settings in CASES]


@pytest.fixture(autouse=True)
def lab_interfaces(monkeypatch):
    """The lab parser resolves antispoof and interface names against interfaces: give it a server's,
    each external interface name the templates use carrying a public address."""
    def interfaces():
        links = [{"ifname": "lo", "ifindex": 1, "link_type": "loopback",
                  "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]}]
        for index, name in enumerate(("vtnet0", "igb0", "em0"), start=2):
            links.append({"ifname": name, "ifindex": index, "link_type": "ether",
                          "addr_info": [{"family": "inet", "local": f"198.51.100.{index}", "prefixlen": 24}]})
        links.append({"ifname": "lo1", "ifindex": 100, "link_type": "none",
                      "addr_info": [{"family": "inet", "local": "10.0.0.1", "prefixlen": 32}]})
        for link in links:
            link["name"] = netif.to_freebsd(link["ifname"])
        return json.loads(json.dumps(links))
    monkeypatch.setattr(netif, "interfaces", interfaces)


def _lab_errors(text):
    try:
        pfconf.parse(text, FILENAME)
    except pfconf.PfSyntaxError as error:
        return error.errors
    return []


def _lines(errors):
    return [int(re.match(r"[^:]+:(\d+):", error).group(1)) for error in errors]


@pytest.mark.parametrize("name, text", RENDERED, ids=[name for name, _ in RENDERED])
def test_every_rendered_pf_conf_passes_both(name, text):
    assert check_pf_conf(text, FILENAME) == []
    assert _lab_errors(text) == []
    ruleset = pfconf.parse(text, FILENAME)
    assert [rule["action"] for rule in ruleset["nat"]][:1] == ["nat"]
    overloads = [rule for rule in ruleset["rules"]
                 if rule["action"] == "pass" and rule["state_options"].get("overload")]
    world = "table <admins> const { 0.0.0.0/0" in text or "::/0 }" in text
    assert bool(overloads) == world
    if not world:
        assert "pass in quick on $ext_if proto tcp from <admins>" in text


BASE = dict(RENDERED)["edge-minimal"]
MAX_LINE = re.search(r"\(max-src-conn \d+, max-src-conn-rate \d+/\d+, overload", BASE).group(0)

BROKEN = [
    # (id, old text of the rendered relay1 pf.conf, replacement)
    ("typo keyword", "pass quick on $jail_if", "pas quick on $jail_if"),
    ("typo inside a rule", "block log all", "block log alll"),
    ("undefined macro", "port $sshd_port flags", "port $sshdport flags"),
    ("nat after filter", "pass quick on $jail_if\n",
     "pass quick on $jail_if\nnat on $ext_if inet from $jail_ip to any -> $ext_ip\n"),
    ("scrub after nat", "antispoof quick", "scrub in all\nantispoof quick"),
    ("bad IPv4", 'jail_ip = "10.0.0.1"', 'jail_ip = "10.0.0.256"'),
    ("bad prefix", "table <admins> const { ", "table <admins> const { 192.0.2.0/33, "),
    ("port out of range", 'sshd_port = "22"', 'sshd_port = "70000"'),
    ("unknown service", "relay_ports = \"{ 9001", "relay_ports = \"{ nntpx 9001"),
    ("flags on udp", "inet proto tcp from any to $jail_ip", "inet proto udp from any to $jail_ip"),
    ("bad flags letter", "port $relay_ports flags S/SA", "port $relay_ports flags S/SX"),
    ("unknown icmp type", "{ echoreq unreach }", "{ echoreq unreachable }"),
    ("icmp-type on tcp", "inet proto icmp icmp-type", "inet proto tcp icmp-type"),
    ("keep state on block", "block log all", "block log all keep state"),
    ("port without tcp/udp", "pass out quick on $ext_if keep state", "pass out quick on $ext_if to port 53 keep state"),
    ("unterminated quote", 'ext_if = "vtnet0"', 'ext_if = "vtnet0'),
    ("nat without target", " -> $ext_ip", ""),
    ("nat without interface", "nat on $ext_if inet", "nat inet"),
    ("duplicate table", "table <bruteforce> persist\n", "table <bruteforce> persist\ntable <admins> persist\n"),
    ("overload without limits", MAX_LINE, "(max 10, overload"),
    ("inet6 address in inet rule", "inet proto tcp from any to $jail_ip", "inet proto tcp from any to 2001:db8::1"),
]


@pytest.mark.parametrize("case", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_variant_is_refused_by_both_at_the_same_line(case):
    _id, old, new = case
    assert old in BASE, f"the rendered pf.conf no longer contains {old!r}"
    text = BASE.replace(old, new, 1)
    product = check_pf_conf(text, FILENAME)
    lab = _lab_errors(text)
    assert product, f"the product's checker accepted:\n{text}"
    assert lab, f"the lab's parser accepted:\n{text}"
    assert _lines(lab)[0] == product[0].line, (lab, [str(e) for e in product])
