"""The firewall: pf enabled at boot and now with exactly the rules of the pf.conf the template renders, pflogd
logging, the sshd rate-limit table, the jail address on its cloned loopback; and, from the operator's machine,
what the public address lets through.

Loaded rules are compared in pfctl's own normalised form: the server's pfctl parses the rendered pf.conf
(`pfctl -nv -f -`, nothing loaded) and its output is compared, kind by kind, with `pfctl -s nat` and `-s rules`.
"""

import errno
import ipaddress
import socket

import pytest

from host_checks import (
    parse_pf_table,
    pf_rule_kind,
    pf_rule_lines,
    pf_tables,
    require_jail_running,
    run_with_input,
    server_for_run,
    settings_for_run,
)
from torjail.freebsd.net import Interfaces
from torjail.freebsd.pf import PfStatus
from torjail.render import render_file
from torjail.tasks.firewall import BRUTEFORCE_CRON

PF_CONF = "/etc/pf.conf"
PF_RULE_KINDS = ("nat", "rdr", "scrub", "block", "pass")
PFCTL_TIMEOUT = 60
CONNECT_TIMEOUT = 5
# Ports tried, in order, for the "closed from outside" check: the first one the settings do not open.
CLOSED_PORT_CANDIDATES = (23, 25, 3389, 8080)


def rc_variables(settings, server):
    """rc.conf variable -> (how to compare, wanted value) for pf, pflog and the jail's loopback (the jail's
    alias is numbered by its place among the server's relays)."""
    interface = settings.jail_interface
    alias = [jail.jail_name for jail in server.jail_settings].index(settings.jail_name)
    return {
        "pf_enable": ("equals", "YES"),
        "pf_rules": ("equals", PF_CONF),
        "pflog_enable": ("equals", "YES" if server.pflog else "NO"),
        "cloned_interfaces": ("lists", interface),
        f"ifconfig_{interface}_alias{alias}": ("equals", f"inet {settings.jail_ip}/32"),
    }


def open_ports(settings, server):
    """(name, port) of what the public address must accept from outside for this jail (an onion service's:
    nothing of its own), and sshd."""
    if settings.kind != "relay":
        return [("sshd", server.sshd_port)]
    ports = [("ORPort", settings.or_port), ("sshd", server.sshd_port)]
    if settings.dir_port:
        ports.insert(1, ("DirPort", settings.dir_port))
    return ports


def pytest_generate_tests(metafunc):
    settings = settings_for_run(metafunc.config)
    if "rc_variable" in metafunc.fixturenames:
        metafunc.parametrize("rc_variable", list(rc_variables(settings, server_for_run(metafunc.config)))
                             if settings else [])
    if "pf_table" in metafunc.fixturenames:
        # table definitions do not depend on the external interface, so the preview rendering names them
        metafunc.parametrize("pf_table", pf_tables(render_file(server_for_run(metafunc.config), "pf.conf.j2"))
                             if settings else [])
    if "open_port" in metafunc.fixturenames:
        items = open_ports(settings, server_for_run(metafunc.config)) if settings else []
        metafunc.parametrize("open_port", items, ids=[name for name, _ in items])


@pytest.fixture(scope="module")
def expected_rules(host, rendered):
    """The rendered pf.conf's rules, normalised by the server's own pfctl (parsed only, never loaded)."""
    result = run_with_input(host, "pfctl -nv -f -", rendered[PF_CONF].encode(), timeout=PFCTL_TIMEOUT)
    assert result.returncode == 0, f"pfctl -nv refuses the rendered pf.conf: {result.stderr.decode()}"
    return pf_rule_lines(result.stdout.decode())


@pytest.fixture(scope="module")
def loaded_rules(host):
    return pf_rule_lines(host.check_output("pfctl -s nat") + "\n" + host.check_output("pfctl -s rules"))


def pf_ruleset(rule):
    """The ruleset a rule line belongs to: translation (nat, rdr, binat: pfctl -s nat) or filter (pfctl -s rules)."""
    return "translation" if pf_rule_kind(rule).removesuffix("-anchor") in ("nat", "rdr", "binat") else "filter"


def test_pf_enabled(host):
    """With pf disabled nothing is filtered: sshd is open to brute force and the relay ports are not redirected."""
    status = PfStatus().process(host.check_output("pfctl -s info").splitlines())
    assert status["enabled"], "pfctl -s info does not say Status: Enabled"


def test_pf_conf_matches_rendered(host, rendered):
    """A hand-edited pf.conf is loaded at the next boot or reload and may open what the settings close."""
    assert host.file(PF_CONF).content_string == rendered[PF_CONF]


@pytest.mark.parametrize("kind", PF_RULE_KINDS)
def test_pf_rules_loaded(expected_rules, loaded_rules, kind):
    """Loaded rules that differ from the rendered ones (a removed rdr, an extra pass) leave the host open or the
    relay unreachable, whatever /etc/pf.conf says."""
    wanted = [rule for rule in expected_rules if pf_rule_kind(rule) == kind]
    loaded = [rule for rule in loaded_rules if pf_rule_kind(rule) == kind]
    missing = [rule for rule in wanted if rule not in loaded]
    unexpected = [rule for rule in loaded if rule not in wanted]
    assert not missing and not unexpected, f"{kind} rules missing: {missing}; not in pf.conf: {unexpected}"


def test_pf_rules_in_order(expected_rules, loaded_rules):
    """pf applies the last matching rule: the same rules in another order (a pass before `block all`) decide
    otherwise. Rules loaded but not rendered, or rendered but not loaded, are test_pf_rules_loaded's concern; here
    only the order of the rules both have counts, within the translation rules and within the filter rules (pfctl
    lists them apart)."""
    for ruleset in ("translation", "filter"):
        expected = [rule for rule in expected_rules if pf_ruleset(rule) == ruleset]
        loaded = [rule for rule in loaded_rules if pf_ruleset(rule) == ruleset]
        found = [rule for rule in loaded if rule in expected]
        wanted = [rule for rule in expected if rule in loaded]
        assert found == wanted, f"{ruleset} rules loaded in another order than pf.conf's:\n  " + "\n  ".join(
            f"{'!' if rule != want else ' '} {rule}   (pf.conf: {want})" for rule, want in zip(found, wanted))


def test_pf_table_present(host, pf_table):
    """The rules refer to these tables; without <bruteforce> the sshd rate limit has nowhere to put offenders."""
    tables = host.check_output("pfctl -s Tables").split()
    assert pf_table in tables, f"pfctl -s Tables: {tables}"


def test_admins_table(host, server_settings):
    """Only admin_networks may reach sshd; a wider <admins> table opens sshd to more of the internet."""
    shown = parse_pf_table(host.check_output("pfctl -t admins -T show"))
    loaded = {ipaddress.ip_network(entry, strict=False) for entry in shown}
    assert loaded == {ipaddress.ip_network(network, strict=False) for network in server_settings.admin_networks}


def test_metrics_table(host, settings):
    """Only metrics_networks may reach tor's MetricsPort: a wider <metrics> table shows the relay's traffic to more
    of the internet."""
    if settings.kind != "relay" or not settings.metrics_port:
        pytest.skip("no metrics_port")
    shown = parse_pf_table(host.check_output("pfctl -t metrics -T show"))
    loaded = {ipaddress.ip_network(entry, strict=False) for entry in shown}
    assert loaded == {ipaddress.ip_network(network, strict=False) for network in settings.metrics_networks}


def test_pflogd_as_host_logs_say(host, server_settings):
    """With pflog in host_logs, blocked traffic (an attack in progress) leaves a trace in /var/log/pflog; without
    it, pflogd must not write the relay's traffic to the host's clear disk."""
    result = host.run("service pflog onestatus")
    if server_settings.pflog:
        assert result.rc == 0, f"service pflog onestatus: {result.stdout}{result.stderr}"
    else:
        assert result.rc != 0, f"pflogd runs although host_logs has no pflog: {result.stdout}"


def test_bruteforce_expiry_cron_job(host, server_settings):
    """Without it, an address in <bruteforce> stays there until pf is reloaded: one burst of logins locks an
    operator out for good."""
    assert host.file(BRUTEFORCE_CRON).content_string == render_file(server_settings, "bruteforce.cron.j2")
    result = host.run("service cron status")
    assert result.rc == 0, f"cron does not run, so nothing expires: {result.stdout}{result.stderr}"


def test_rc_variable(sysrc, settings, server_settings, rc_variable):
    """What rc.conf lacks is gone after a reboot: pf off, no pflog, no jail address."""
    how, wanted = rc_variables(settings, server_settings)[rc_variable]
    value = sysrc(rc_variable)
    if how == "lists":
        assert wanted in (value or "").split(), f"{rc_variable}={value!r} does not list {wanted}"
    else:
        assert value == wanted, f"{rc_variable}={value!r}, wanted {wanted!r}"


def test_jail_address_on_loopback(host, settings):
    """pf redirects the relay ports to the jail address; without it on lo1 the relay is unreachable."""
    interfaces = Interfaces().process(host.run("ifconfig %s", settings.jail_interface).stdout.splitlines())
    addresses = interfaces.get(settings.jail_interface, {}).get("inet", [])
    assert settings.jail_ip in addresses, f"{settings.jail_interface} carries {addresses}"


def _jail_connects(host, settings, address, port):
    """Whether a TCP connection from inside the running jail, from the jail's address (the only one it can bind),
    to address:port opens (base nc, 2 s: lo0 answers in well under that)."""
    require_jail_running(host, settings)
    return host.run("jexec %s nc -s %s -z -w 2 %s %s", settings.jail_name, settings.jail_ip, address,
                    str(port)).rc == 0


def test_jail_cannot_reach_the_hosts_sshd(host, settings, server_settings):
    """Root in a compromised jail must not get a login prompt of the host: not on the public address (over lo0)
    nor on the jail's own (sshd listens on every address, the jail's included)."""
    for address in (settings.public_ipv4, settings.jail_ip):
        assert not _jail_connects(host, settings, address, server_settings.sshd_port), \
            f"the jail opens a connection to the host's sshd on {address}:{server_settings.sshd_port}"


def test_host_loopback_still_reaches_sshd(host, server_settings):
    """pf filters lo0 now: the host's own connections over it must still pass."""
    result = host.run("nc -z -w 5 127.0.0.1 %s", str(server_settings.sshd_port))
    assert result.rc == 0, f"the host cannot reach its own sshd on 127.0.0.1: {result.stderr}"


# ----------------------------------------------------------------------------- from the operator's machine

def connect(address, port):
    """'open', 'refused' or 'dropped' for a TCP connection from here."""
    try:
        with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "dropped"
    except OSError as error:
        if error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "dropped"
        raise


@pytest.mark.outside
def test_port_open_from_outside(settings, open_port):
    """The relay must be reachable on its advertised ports, and the operator on sshd."""
    name, port = open_port
    assert connect(settings.public_ipv4, port) == "open", f"{name} {settings.public_ipv4}:{port} is not reachable"


@pytest.mark.outside
def test_other_port_closed_from_outside(settings, server_settings):
    """Anything else reachable from outside is attack surface the settings never opened."""
    allowed = {port for _name, port in open_ports(settings, server_settings)}
    port = next(port for port in CLOSED_PORT_CANDIDATES if port not in allowed)
    assert connect(settings.public_ipv4, port) in ("refused", "dropped"), \
        f"{settings.public_ipv4}:{port} accepts connections"
