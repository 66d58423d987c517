"""lock.py planned against a relay (tests/plan/fixtures/unlock_*.yaml): stop the jail, detach the GELI provider
and the md unit, in that order; nothing to do when already locked; never a passphrase, never a deletion."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from harness import plan

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "lock.py"
FIXTURES = Path(__file__).parent / "fixtures"
LOCKING = ["geli detach md10.eli", "mdconfig -d -u 10"]


def plan_lock(name: str, **facts):
    loaded = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text(encoding="utf-8"))
    return plan(LOCK, data=loaded["data"], facts={**copy.deepcopy(loaded["facts"]), **facts})


def test_running_relay_is_stopped_and_its_image_locked():
    result = plan_lock("unlock_running")
    assert result.commands == ["jail -f /etc/jail.conf.d/tor.conf -r tor", *LOCKING]


def test_root_left_mounted_with_the_jail_stopped_is_unmounted_before_the_detach():
    result = plan_lock("unlock_running", **{"jail.Jails": {}})
    assert result.commands == ["umount /var/jails/tor", *LOCKING]


def test_locked_image_needs_nothing():
    assert plan_lock("unlock_locked").commands == []


def test_unit_attached_without_its_provider_is_detached():
    """A half-done unlock (mdconfig ran, geli attach did not) leaves only the md unit to detach."""
    running = yaml.safe_load((FIXTURES / "unlock_running.yaml").read_text(encoding="utf-8"))["facts"]
    result = plan_lock("unlock_locked", **{"md.MdDevices": running["md.MdDevices"]})
    assert result.commands == ["mdconfig -d -u 10"]


def test_locking_asks_no_passphrase_and_deletes_nothing():
    result = plan_lock("unlock_running")
    fed = [command for commands in result.pyinfra_commands() for command in commands
           if command.connector_arguments.get("_stdin") is not None]
    assert fed == []
    assert not any(word in command for command in result.commands for word in ("rm ", "newfs", "geli init",
                                                                               "geli kill", "truncate"))
