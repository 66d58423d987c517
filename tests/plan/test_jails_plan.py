"""A host's settings moved into a `jails` list of one relay plan exactly what its flat settings plan, on a fresh
server and on a converged one (nothing touches the image already there); a list of several jails stops deploy.py,
unlock.py, lock.py and backup.py before any operation, naming the setting."""

import pytest
from harness import plan
from test_deploy_plan import DEPLOY, passphrase, planned_operations, server, stable  # noqa: F401: fixtures

from torjail.settings import SettingsError

TOOLS = DEPLOY.parent
LISTED = {"kind": "relay", "jail_name": "tor", "jail_ip": "10.0.0.1", "md_unit": 10, "relay_nickname": "TestRelay"}
SECOND = {"kind": "relay", "jail_name": "tor2", "jail_ip": "10.0.0.2", "md_unit": 11, "relay_nickname": "Second",
          "or_port": 9002, "dir_port": 0}


def as_list(data, *jails):
    """The fixture's host data with its relay moved into `jails`."""
    return {**{key: value for key, value in data.items() if key != "relay_nickname"}, "jails": list(jails)}


def planned(fixture, data, deploy=DEPLOY):
    loaded = server(fixture)
    result = plan(deploy, data=data(loaded["data"]), facts=loaded["facts"])
    return [(op.names, stable(op.commands), op.noops) for op in result.operations]


@pytest.mark.parametrize("fixture", ["deploy_fresh", "deploy_converged", "deploy_half_made"])
def test_one_listed_relay_plans_what_the_flat_settings_plan(fixture):
    flat = planned(fixture, lambda data: data)
    listed = planned(fixture, lambda data: as_list(data, LISTED))
    assert listed == flat
    assert flat  # the fixtures plan operations: the comparison is not of two empty plans


@pytest.mark.parametrize("tool", ["deploy.py", "unlock.py", "lock.py", "backup.py"])
def test_several_jails_stop_every_tool_before_any_operation(tool, planned_operations):
    loaded = server("deploy_converged")
    with pytest.raises(SettingsError) as caught:
        plan(TOOLS / tool, data=as_list({**loaded["data"], "family": "fleet",
                                         "age_recipient": "age19s9uupdwtthy8lqxy2uefcjzyrffx9wu0dmfxjec8dzjne"
                                                          "hea38q7hxyad"}, LISTED, SECOND),
             facts=loaded["facts"])
    assert caught.value.problems == [
        "server: setting 'jails': lists 2 jails (tor (relay), tor2 (relay)), valid as a list; but torjail deploys "
        "one relay jail per host so far: list one relay"]
    assert planned_operations == []
