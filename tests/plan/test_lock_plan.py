"""The deploy lock in deploy.py, unlock.py and lock.py: a server whose lock another run holds gets no operation at all."""

import pytest
from pyinfra.api.exceptions import PyinfraError
from test_deploy_plan import DEPLOY, plan_server

from torjail.procedures.deploylock import DeployLock

UNLOCK = DEPLOY.parent / "unlock.py"
LOCK = DEPLOY.parent / "lock.py"
HELD = {"deploylock.DeployLock": {"since": 1764763200, "sshd": 4242}}


@pytest.mark.parametrize("deploy, fixture", [(DEPLOY, "deploy_fresh"), (DEPLOY, "deploy_converged"),
                                             (UNLOCK, "unlock_locked"), (LOCK, "unlock_running")],
                         ids=["deploy fresh", "deploy", "unlock", "lock"])
def test_a_second_run_stops_before_anything_with_who_holds_the_lock(deploy, fixture):
    with pytest.raises(PyinfraError, match=r"^server: another deploy is running on server since 2025-12-03 "
                                           r"12:00:00 UTC \(its SSH session is sshd process 4242 there\); "
                                           r"nothing was changed.*\(kill 4242\)"):
        plan_server(fixture, deploy=deploy, **HELD)


def test_the_lock_is_the_first_thing_a_deploy_asks_the_server():
    """As the first question of the survey, the one remote command of a converged relay's re-run."""
    result = plan_server("deploy_converged")
    assert result.fixture.surveyed[0] == ("deploylock.DeployLock", "")
    assert result.fixture.asked == []


@pytest.mark.parametrize("output, holder", [
    (["acquired"], None),
    (["held 812 4242 1764763200"], {"since": 1764763200, "sshd": 4242}),
    (["held"], {"since": None, "sshd": None}),
    (["no-ssh"], {"no_ssh": True}),
])
def test_lock_fact_reads_the_holder(output, holder):
    assert DeployLock().process(output) == holder
