"""The firewall task planned against a converged server whose pf does not run its pf.conf, and the cron job.

Helpers and fixtures are those of test_deploy_plan (deploy_converged.yaml: pf enabled, running its pf.conf).
"""

import shlex

from harness import plan
from test_deploy_plan import (CANCEL, CRON, DEPLOY, GUARD, GUARDED, INLINE_CONTENT, operation, placed, plan_server,
                              server, stable)

NOT_LOADED = {"pf.PfRulesetLoaded": {"path=/etc/pf.conf": False}}
KEEP_PREVIOUS = "if [ -f /etc/pf.conf ]; then cp -p /etc/pf.conf /etc/pf.conf.torjail-previous; fi"


def test_a_pf_conf_in_place_but_never_loaded_is_loaded():
    """A deploy stopped between the upload of pf.conf and its load leaves the file in place while pf runs the
    old ruleset: comparing the file with its earlier copy says "no change", comparing it with pf says "load"."""
    result = plan_server("deploy_converged", **NOT_LOADED)
    assert [(op.name, op.commands, op.conditional) for op in result.changed] == [
        (GUARDED[0], [GUARD, "pfctl -f /etc/pf.conf"], False),
        (GUARDED[1], ["function fresh_ssh_login"], False),
        (GUARDED[2], [CANCEL], False),
    ]


def test_a_pf_conf_never_loaded_does_not_become_the_rollback_target():
    """The guard puts back the previous file; the file in place was never loaded, so the last good copy (left
    by the deploy that was stopped) must stay the previous one."""
    changed = plan_server("deploy_converged", **NOT_LOADED, **{"files.Sha1File": {"path=/etc/pf.conf": "0" * 40}})
    script = " ".join(operation(changed, "pf.conf (checked by pfctl -nf)").commands)
    assert KEEP_PREVIOUS not in script and "mv -f /etc/pf.conf.torjail-new /etc/pf.conf" in script
    assert not operation(changed, GUARDED[0]).conditional
    loaded = plan_server("deploy_converged", **{"files.Sha1File": {"path=/etc/pf.conf": "0" * 40}})
    assert KEEP_PREVIOUS in " ".join(operation(loaded, "pf.conf (checked by pfctl -nf)").commands)


def test_the_bruteforce_expiry_runs_from_cron_every_minute_with_sshd_block_seconds():
    result = plan_server("deploy_converged", **{"files.Sha1File": {f"path={CRON}": "0" * 40}})
    (expiry,) = [op for op in result.changed]
    assert stable(expiry.commands) == [placed(CRON, "644")]
    lines = shlex.split(INLINE_CONTENT.search(expiry.commands[0]).group(0))[2].splitlines()
    assert lines[0].startswith("# Managed by torjail")
    assert "*\t*\t*\t*\t*\troot\tpfctl -q -t bruteforce -T expire 3600 2>/dev/null" in lines


def test_a_converged_server_with_its_cron_job_changes_nothing():
    assert plan_server("deploy_converged").changed == []


RC_CONF = "jail=None, path=/etc/rc.conf"


def test_a_server_with_cron_turned_off_gets_it_back():
    """Without cron nothing ever leaves <bruteforce>: a server where cron was turned off gets it enabled at
    boot and started now."""
    result = plan_server("deploy_converged", **{"service.ServiceRunning": {"jail=None, service=pflog": True,
                                                                           "jail=None, service=cron": False}},
                         **{"rc.RcConf": {RC_CONF: {**server("deploy_converged")["facts"]["rc.RcConf"][RC_CONF],
                                                    "cron_enable": "NO"}}})
    commands = [command for op in result.changed for command in op.commands]
    assert "sysrc -f /etc/rc.conf cron_enable=YES" in commands and "service cron start" in commands


def test_a_guard_still_waiting_is_stopped_before_the_new_pf_conf_goes_in_place():
    """Its grace period could end between the upload and the load: it would copy its previous ruleset over the
    new file and load it, and the deploy would reload that old file and report success. Stopped first, it
    cannot; and the ruleset it guarded, never confirmed, does not become the rollback target."""
    changed = plan_server("deploy_converged", **{"pfguard.PfGuard": 4242,
                                                 "files.Sha1File": {"path=/etc/pf.conf": "0" * 40}})
    names = [op.name for op in changed.changed]
    assert names.index("Stop the rollback guard an earlier deploy left waiting") \
        < names.index("pf.conf (checked by pfctl -nf)") < names.index(GUARDED[0])
    assert KEEP_PREVIOUS not in operation(changed, "pf.conf (checked by pfctl -nf)").commands


def test_host_logs_without_pflog_stop_pflogd_and_keep_it_off_at_boot():
    """The operator chose no pf log on the host's clear disk: pflogd is stopped and stays off after a reboot."""
    result = plan(DEPLOY, data={**server("deploy_converged")["data"], "host_logs": ["jail_console"]},
                  facts=server("deploy_converged")["facts"])
    changed = {op.name: op.commands for op in result.changed}
    assert changed["pf, no pflog (host_logs) and cron at boot"] == ["sysrc -f /etc/rc.conf pflog_enable=NO"]
    assert changed["pflogd stopped (host_logs)"] == ["service pflog onestop"]
