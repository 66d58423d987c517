"""The firewall: pf.conf placed only after `pfctl -nf` accepts it, loaded with a
reload under a rollback guard that a fresh SSH login must cancel, then pf and pflog enabled for the next boot, and
a cron job that lets addresses out of <bruteforce> once sshd_block_seconds have passed.
"""

from pyinfra.operations import python
from pyinfra.operations.util import any_changed

from torjail.procedures import files as checked_files
from torjail.freebsd import rc, service
from torjail.procedures import pfguard
from torjail.freebsd.pf import PfRulesetLoaded, PfStatus
from torjail.render import BRUTEFORCE_CRON, render_file
from torjail.freebsd import readings

PF_CONF = "/etc/pf.conf"
PF_CONF_MODE = "600"  # the ruleset names the admins' networks: root's alone
PF_CONF_USER, PF_CONF_GROUP = "root", "wheel"


def apply(settings):
    enabled = readings.fact(PfStatus)["enabled"]
    loaded = enabled and readings.fact(PfRulesetLoaded, path=PF_CONF)
    # The previous ruleset is what the guard puts back: the live file when pf runs it, or when pf is off (the
    # file is then all there is to put back). When pf runs something else (a deploy stopped between the upload
    # and the load), the live file was never loaded and must not become the rollback target.
    # A guard an earlier deploy left waiting is stopped before the new file goes in place (see superseded); the
    # ruleset it guarded was never confirmed by a fresh login, so it does not become the previous one either:
    # the last confirmed ruleset stays the rollback target.
    unconfirmed = readings.fact(pfguard.PfGuard) is not None
    if unconfirmed:
        pfguard.superseded(name="Stop the rollback guard an earlier deploy left waiting")
    content = render_file(settings, "pf.conf.j2")
    rewritten = checked_files.content_differs(PF_CONF, content)  # a chmod or chown alone loads nothing
    pf_conf = checked_files.checked(
        name="pf.conf (checked by pfctl -nf)",
        dest=PF_CONF,
        content=content,
        check=["pfctl", "-n", "-f", "{path}"],
        mode=PF_CONF_MODE,
        user=PF_CONF_USER,
        group=PF_CONF_GROUP,
        keep_previous=PF_CONF + pfguard.PREVIOUS_SUFFIX if (loaded or not enabled) and not unconfirmed else None,
    )
    # pf running this pf.conf: nothing to load, unless the file changes (the load then waits for the new file
    # to be in place at execution, `_if`). pf off, or running another ruleset than the file's (an earlier
    # deploy stopped before the load): load under the guard. A guard still waiting means an earlier deploy
    # stopped before the fresh login confirmed its ruleset: confirm it now, or the guard rolls the converged host
    # back when its grace period ends.
    if not loaded or unconfirmed or rewritten:
        reload_needed = {} if not loaded or unconfirmed else {"_if": any_changed(pf_conf)}
        pfguard.guarded_load(name="Load pf.conf under a rollback guard", rules=PF_CONF,
                             seconds=settings.pf_rollback_seconds, **reload_needed)
        # pyinfra hands state and host to a function whose first two arguments are named so
        python.call(name="A fresh SSH login still works", function=pfguard.fresh_ssh_login, **reload_needed)
        pfguard.guard_cancelled(name="Keep the new ruleset (cancel the rollback)", rules=PF_CONF, **reload_needed)

    # host_logs without pflog: nothing of the relay's traffic is logged on the host's clear disk.
    # FreeBSD enables cron by default, but a server where it was turned off would keep every address in
    # <bruteforce> for good: the expiry needs cron, so the deploy says so in rc.conf and starts it.
    rc.values(name="pf, " + ("pflog" if settings.pflog else "no pflog (host_logs)") + " and cron at boot",
              assignments={"pf_enable": "YES", "pf_rules": PF_CONF, "pflog_enable": "YES" if settings.pflog else "NO",
                           "cron_enable": "YES"})
    if settings.pflog:
        service.service(name="pflogd running", service="pflog")
    else:
        service.service(name="pflogd stopped (host_logs)", service="pflog", running=False)
    checked_files.put(name="cron job expiring <bruteforce> entries", content=render_file(settings, "bruteforce.cron.j2"),
                      dest=BRUTEFORCE_CRON, mode="644")
    service.service(name="cron running", service="cron")
