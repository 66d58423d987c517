"""The firewall: pf.conf placed only after `pfctl -nf` accepts it, loaded with a
reload under a rollback guard that a fresh SSH login must cancel, then pf and pflog enabled for the next boot.
"""

from pyinfra import host
from pyinfra.operations import python
from pyinfra.operations.util import any_changed

from torjail.freebsd import files as checked_files
from torjail.freebsd import pfguard, rc, service
from torjail.freebsd.pf import PfStatus
from torjail.render import render_file

PF_CONF = "/etc/pf.conf"


def apply(settings, ext_if):
    pf_conf = checked_files.checked(
        name="pf.conf (checked by pfctl -nf)",
        dest=PF_CONF,
        content=render_file(settings, "pf.conf.j2", ext_if=ext_if),
        check=["pfctl", "-n", "-f", "{path}"],
        mode="600",
        keep_previous=PF_CONF + pfguard.PREVIOUS_SUFFIX,
    )
    # pf running with the same pf.conf: nothing to load. Otherwise load under the guard; when pf already runs,
    # the load also waits for the new pf.conf to be in place at execution (`_if`). A guard still waiting means an
    # earlier deploy stopped before the fresh login confirmed its ruleset: confirm it now, or the guard rolls the
    # converged host back when its grace period ends.
    enabled = host.get_fact(PfStatus)["enabled"]
    unconfirmed = host.get_fact(pfguard.PfGuard) is not None
    if not enabled or unconfirmed or pf_conf.will_change:
        reload_needed = {} if not enabled or unconfirmed else {"_if": any_changed(pf_conf)}
        pfguard.guarded_load(name="Load pf.conf under a rollback guard", rules=PF_CONF,
                             seconds=settings.pf_rollback_seconds, **reload_needed)
        # pyinfra hands state and host to a function whose first two arguments are named so
        python.call(name="A fresh SSH login still works", function=pfguard.fresh_ssh_login, **reload_needed)
        pfguard.guard_cancelled(name="Keep the new ruleset (cancel the rollback)", rules=PF_CONF, **reload_needed)

    rc.value(name="pf at boot", variable="pf_enable", value="YES")
    rc.value(name="pf rules file", variable="pf_rules", value=PF_CONF)
    rc.value(name="pflog at boot", variable="pflog_enable", value="YES")
    service.running(name="pflogd running", service="pflog")
