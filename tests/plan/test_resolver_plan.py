"""An exit's own resolver in the plan: local-unbound configured, started in a running jail and only then named by
the jail's resolv.conf, so tor and `pkg -j` never face a resolver that does not answer; a middle relay keeps
copying the host's resolv.conf."""

import hashlib

from harness import plan
from test_deploy_plan import DEPLOY, _merge_facts, execute, operation, passphrase, server, stable  # noqa: F401 (autouse)

from torjail.render import render_file
from torjail.settings import build_settings

UNBOUND_CONF = "/var/jails/tor/var/unbound/unbound.conf"
CONFIGURED = "Jail local-unbound configuration"
STARTED = "local-unbound running in the jail"
RELOADED = "Reload local-unbound (configuration changed)"
RESOLV = "Jail /etc/resolv.conf: the jail's own local-unbound"


ABSENT = {"files.Sha1File": {f"path={UNBOUND_CONF}": None},
          "service.ServiceRunning": {"jail=tor, service=local_unbound": False}}


def _plan_exit(name="deploy_converged", **facts):
    """The deploy of the fixture's server made an exit; its local-unbound absent unless `facts` say otherwise."""
    fixture = server(name)
    data = {**fixture["data"], "exit_relay": True}
    facts = _merge_facts(_merge_facts(fixture["facts"], ABSENT), facts)
    return plan(DEPLOY, data=data, facts=facts), build_settings("server", data)


def test_a_running_exit_jail_gets_local_unbound_started_before_its_resolv_conf_names_it():
    result, _settings = _plan_exit()
    names = [op.name for op in result.changed]
    assert names.index(CONFIGURED) < names.index(STARTED) < names.index(RESOLV), names
    assert "Jail /etc/resolv.conf from the host" not in [op.name for op in result.operations]
    assert operation(result, STARTED).commands == ["service -j tor local_unbound start"]
    assert all(command.startswith("printf %s CONTENT | jexec tor /bin/sh -c ")
               for name in (CONFIGURED, RESOLV) for command in stable(operation(result, name).commands))
    assert RELOADED not in names  # started with the new configuration


def test_a_changed_configuration_is_reread_by_the_running_local_unbound():
    result, _settings = _plan_exit(**{"service.ServiceRunning": {"jail=tor, service=local_unbound": True}})
    assert STARTED not in [op.name for op in result.operations]
    assert execute(result, {CONFIGURED})[RELOADED] == ["service -j tor local_unbound reload"]
    unchanged, _settings = _plan_exit(**{"service.ServiceRunning": {"jail=tor, service=local_unbound": True}})
    assert execute(unchanged, set())[RELOADED] == []


def test_a_running_exit_jail_with_its_resolver_in_place_changes_nothing_of_it():
    _result, settings = _plan_exit()
    sums = {f"path={UNBOUND_CONF}": hashlib.sha1(render_file(settings, "local-unbound.conf.j2").encode()).hexdigest(),
            "path=/var/jails/tor/etc/resolv.conf":
                hashlib.sha1(render_file(settings, "jail-resolv.conf.j2").encode()).hexdigest()}
    placed = {"mode": "644", "user": "0", "group": "0"}
    result, _settings = _plan_exit(**{"files.Sha1File": sums,
                                      "jailfs.FileAttributes": {f"path={UNBOUND_CONF}": placed},
                                      "service.ServiceRunning": {"jail=tor, service=local_unbound": True}})
    changed = [op.name for op in result.changed]
    assert not {CONFIGURED, STARTED, RESOLV} & set(changed), changed
    assert execute(result, set())[RELOADED] == []


def test_a_stopped_exit_jail_gets_its_files_from_the_host_shell_and_its_rc_starts_local_unbound():
    result, _settings = _plan_exit("deploy_fresh")
    names = [op.name for op in result.operations]
    assert CONFIGURED in names and RESOLV in names and STARTED not in names and RELOADED not in names
    assert any("/bin/sh -c 'R=/var/jails/tor; " in command and "unbound.conf" in command
               for command in operation(result, CONFIGURED).commands)


def test_a_middle_relay_copies_the_hosts_resolv_conf_and_runs_no_resolver():
    fixture = server("deploy_converged")
    result = plan(DEPLOY, data=fixture["data"], facts=fixture["facts"])
    names = [op.name for op in result.operations]
    assert "Jail /etc/resolv.conf from the host" in names
    assert not {CONFIGURED, STARTED, RELOADED, RESOLV} & set(names)
