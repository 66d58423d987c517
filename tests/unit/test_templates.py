"""Every template rendered for both example relays and for edge settings, each file checked by its validator
(real tor for torrc, the strict pf grammar for pf.conf, jail.conf(5) and rc.conf checks)."""

import pytest

from torjail.checks import check_file
from torjail.render import render_all
from torjail.settings import build_settings, load_inventory, settings_for_inventory

BASE = {"identity": "on-relay", "relay_nickname": "EdgeRelay", "relay_contact": "ops@example.org", "public_ipv4": "198.51.100.7"}
EDGES = {
    "minimal": {},
    "ipv6": {"public_ipv6": "2001:db8:1::7"},
    "exit": {"exit_relay": True},
    "exit-ipv6-notice-policy": {"exit_relay": True, "exit_notice": True, "public_ipv6": "2001:db8:1::7",
                                "exit_policy": ["accept *:443", "accept6 *:443", "reject *:*"]},
    "accounting": {"accounting_max": "100 GBytes", "accounting_start": "week 1 04:30", "accounting_rule": "max"},
    "accounting-day-no-dirport": {"accounting_max": "5 GBytes", "accounting_start": "day 00:00", "dir_port": 0},
    "bandwidth": {"bandwidth_rate": "1 MBytes", "bandwidth_burst": "2 MBytes", "ext_if": "igb0"},
    "other-ports-and-jail": {"or_port": 443, "dir_port": 80, "sshd_port": 2222, "jail_ip": "192.168.77.2",
                             "jail_name": "relay", "jail_interface": "lo2", "jail_root": "/usr/jails/relay",
                             "admin_networks": ["198.51.100.0/24", "2001:db8:9::/48"]},
    "dashed-jail-name": {"jail_name": "tor-relay_2", "jail_root": "/var/jails/tor-relay_2",
                         "image_path": "/var/jails/tor-relay_2.img", "public_ipv6": "2001:db8:1::7"},
    "closed-ipv4-and-ipv6-policy": {"exit_relay": True, "public_ipv6": "2001:db8:1::7",
                                    "exit_policy": ["reject private:*", "accept 198.51.100.0/24:80-81",
                                                    "accept6 [2001:db8::]/32:443", "reject *4:*",
                                                    "reject6 *:*"]},
    "metrics": {"metrics_port": 9035, "metrics_networks": ["198.51.100.0/24", "203.0.113.9/32"]},
    "exit-forwarders": {"exit_relay": True, "exit_resolvers": ["198.51.100.53", "2001:db8::53"]},
    "printable-contact": {"relay_contact": "Zoë <ops@example.org> \\ \"relay team\" 0xDEADBEEF",
                          "exit_relay": True, "exit_notice": True},
}


def _example_settings():
    return list(settings_for_inventory(load_inventory("inventory.py")).values())


CASES = [(name, build_settings(f"edge-{name}", {**BASE, **overrides})) for name, overrides in EDGES.items()]


@pytest.fixture(scope="module", params=["relay1", "relay2"])
def example(request):
    return {s.host_name.split(".")[0]: s for s in _example_settings()}[request.param]


def _assert_all_valid(settings):
    files = render_all(settings)
    assert files
    for generated in files:
        assert "Managed by torjail" in generated.content.splitlines()[0] + generated.content.splitlines()[1]
        assert check_file(generated) == [], (generated.path, generated.content)
    return {generated.path: generated.content for generated in files}


def test_example_relays_render_valid_files(example):
    files = _assert_all_valid(example)
    assert "/etc/pf.conf" in files and "/var/jails/tor/usr/local/etc/tor/torrc" in files


@pytest.mark.parametrize("name, settings", CASES, ids=[name for name, _ in CASES])
def test_edge_settings_render_valid_files(name, settings):
    _assert_all_valid(settings)


def _torrc(settings):
    return next(f.content for f in render_all(settings) if f.kind == "torrc").splitlines()


def _pf(settings):
    return next(f.content for f in render_all(settings) if f.kind == "pf.conf")


def test_relay_behind_rdr_uses_current_port_syntax():
    lines = _torrc(build_settings("r", BASE))
    assert "ORPort 198.51.100.7:9001 NoListen" in lines
    assert "ORPort 10.0.0.1:9001 NoAdvertise" in lines
    assert "DirPort 198.51.100.7:9030 NoListen" in lines
    assert "DirPort 10.0.0.1:9030 NoAdvertise" in lines
    assert not any(line.split(" ")[0] in ("ORListenAddress", "DirListenAddress", "AccountingMaxKB", "LogFile",
                                          "LogLevel", "SysLog") for line in lines)
    assert "ORPort 9001 NoListen" not in lines


def test_ipv6_on_and_off():
    with_v6 = _torrc(build_settings("r", {**BASE, **EDGES["ipv6"]}))
    assert "ORPort [2001:db8:1::7]:9001" in with_v6 and "ExitPolicy reject6 *:*" in with_v6
    assert not any("2001:" in line for line in _torrc(build_settings("r", BASE)))
    assert 'ext_ip6 = "2001:db8:1::7"' in _pf(build_settings("r", {**BASE, **EDGES["ipv6"]}))


def test_exit_on_and_off():
    middle = _torrc(build_settings("r", BASE))
    assert "ExitRelay 0" in middle and "ExitPolicy reject *:*" in middle
    exit_lines = _torrc(build_settings("r", {**BASE, "exit_relay": True}))
    assert "ExitRelay 1" in exit_lines and "ReducedExitPolicy 1" in exit_lines
    assert not any(line.startswith("DirPortFrontPage") for line in exit_lines)
    notice = render_all(CASES[3][1])
    assert any(f.path.endswith("tor-exit-notice.html") for f in notice)
    assert "DirPortFrontPage /usr/local/etc/tor/tor-exit-notice.html" in _torrc(CASES[3][1])


def test_accounting_on_and_off():
    assert not any(line.startswith("Accounting") for line in _torrc(build_settings("r", BASE)))
    lines = _torrc(CASES[4][1])
    assert ["AccountingMax 100 GBytes", "AccountingStart week 1 04:30", "AccountingRule max"] == \
        [line for line in lines if line.startswith("Accounting")]


def test_exit_notice_escapes_contact():
    settings = build_settings("r", {**BASE, "exit_relay": True, "exit_notice": True,
                                    "relay_contact": "<script>alert(1)</script>"})
    html = next(f.content for f in render_all(settings) if f.kind == "html")
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_pf_conf_redirects_relay_ports_and_limits_sshd():
    pf = _pf(build_settings("r", {**BASE, "sshd_port": 2222}))
    assert 'relay_ports = "{ 9001 9030 }"' in pf
    assert "rdr on $ext_if inet proto tcp from any to $ext_ip port $relay_ports -> $jail_ip" in pf
    assert 'sshd_port = "2222"' in pf
    assert "overload <bruteforce>)" in pf
    assert "block log all" in pf


def test_broken_torrc_is_rejected_by_real_tor():
    """The torrc validator is the real tor: an obsolete or address-less form fails."""
    from torjail.checks.torrc import check_torrc

    assert check_torrc("ORPort 9001 NoListen\nORPort 10.0.0.1:9001 NoAdvertise\nSocksPort 0\n")
    assert check_torrc("AccountingMaxKB 10\n")
    assert any("obsolete" in p for p in check_torrc("ORListenAddress 0.0.0.0:9001\nORPort 9001\nContactInfo x\n"))


def test_outbound_connections_leave_from_the_jail_addresses():
    """tor binds its outbound sockets to the jail's own addresses; pf's nat maps the IPv4 one to public_ipv4."""
    lines = _torrc(build_settings("r", BASE))
    assert [line for line in lines if line.startswith("OutboundBindAddress")] == ["OutboundBindAddress 10.0.0.1"]
    with_v6 = _torrc(build_settings("r", {**BASE, "public_ipv6": "2001:db8:1::7", "jail_ip": "192.168.7.2"}))
    assert [line for line in with_v6 if line.startswith("OutboundBindAddress")] == \
        ["OutboundBindAddress 192.168.7.2", "OutboundBindAddress 2001:db8:1::7"]


def test_dashed_jail_name_reaches_every_file():
    files = {f.kind: f.content for f in render_all(dict(CASES)["dashed-jail-name"])}
    assert "tor-relay_2 {" in files["jail.conf"]
    assert 'jail "tor-relay_2"' in files["pf.conf"] and 'jail "tor-relay_2"' in files["rc.conf"]
    assert "/etc/jail.conf.d/tor-relay_2.conf" in [f.path for f in render_all(dict(CASES)["dashed-jail-name"])]


def test_tor_never_executes_other_programs():
    """NoExec 1 (the relay guide's hardening): tor refuses to start any other process, checked by real tor above."""
    assert "NoExec 1" in _torrc(build_settings("r", BASE))


def _jail_file(settings, path):
    return {f.path: f.content for f in render_all(settings)}.get(settings.jail_root + path)


def test_exit_jail_resolves_through_its_own_local_unbound():
    """An exit's jail runs local-unbound on its own address and its resolv.conf names it; a middle relay's jail
    keeps the host's resolv.conf (copied, not generated) and runs no resolver."""
    middle = build_settings("r", BASE)
    assert _jail_file(middle, "/var/unbound/unbound.conf") is None and _jail_file(middle, "/etc/resolv.conf") is None
    assert "local_unbound" not in _jail_file(middle, "/etc/rc.conf")
    exit_relay = build_settings("r", {**BASE, "exit_relay": True})
    assert 'local_unbound_enable="YES"' in _jail_file(exit_relay, "/etc/rc.conf").splitlines()
    resolv = [line for line in _jail_file(exit_relay, "/etc/resolv.conf").splitlines() if not line.startswith("#")]
    assert resolv == ["nameserver 10.0.0.1", "options edns0"]
    recursive = _jail_file(exit_relay, "/var/unbound/unbound.conf")
    assert "\tinterface: 10.0.0.1\n" in recursive and "\taccess-control: 10.0.0.1/32 allow\n" in recursive
    assert "\tchroot: /var/unbound\n" in recursive and "\tpidfile: /var/run/local_unbound.pid\n" in recursive
    assert "\tcontrol-interface: /var/run/local_unbound.ctl\n" in recursive  # rc.d's poststart asks it
    assert "forward-zone:" not in recursive and "\tdo-ip6: no\n" in recursive
    forwarding = _jail_file(dict(CASES)["exit-forwarders"], "/var/unbound/unbound.conf")
    assert "forward-zone:\n\tname: .\n\tforward-addr: 198.51.100.53\n\tforward-addr: 2001:db8::53\n" in forwarding


def test_host_logs_decide_what_the_clear_disk_keeps():
    """host_logs without pflog: pf logs nothing; without jail_console: jail(8) keeps no console log."""
    everything = {f.kind: f.content for f in render_all(build_settings("r", BASE))}
    assert "block log all" in everything["pf.conf"] and "exec.consolelog" in everything["jail.conf"]
    nothing = {f.kind: f.content for f in render_all(build_settings("r", {**BASE, "host_logs": []}))}
    rules = [line for line in nothing["pf.conf"].splitlines() if not line.startswith("#")]
    assert "block all" in rules and not any(" log " in f" {line} " for line in rules)
    assert "exec.consolelog" not in nothing["jail.conf"]
    assert check_file(next(f for f in render_all(build_settings("r", {**BASE, "host_logs": []})) if f.kind == "pf.conf")) == []


def test_each_template_is_compiled_once_for_every_host_of_a_run(monkeypatch):
    """Compiling the templates was most of a no-change deploy's planning: a run of several hosts compiles each
    template once."""
    import jinja2

    from torjail import render

    compiled = []
    real = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile",
                        lambda self, source, name=None, *args, **kwargs: compiled.append(name) or real(
                            self, source, name, *args, **kwargs))
    render._environment.cache_clear()
    hosts = settings_for_inventory(load_inventory("inventory.py"))
    for settings in [*hosts.values(), *hosts.values()]:
        render_all(settings)
    assert compiled and len(compiled) == len(set(compiled)), compiled
