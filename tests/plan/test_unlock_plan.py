"""unlock.py planned against a relay after a reboot (tests/plan/fixtures/unlock_*.yaml): attach with the
passphrase on standard input, fsck, start the jail; nothing to do when already unlocked; clear errors otherwise."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from harness import STDIN_MARK, plan
from pyinfra.api.exceptions import PyinfraError

from torjail import secrets
from torjail.tasks.vault import VaultError, VaultMissing

ROOT = Path(__file__).resolve().parents[2]
UNLOCK = ROOT / "unlock.py"
FIXTURES = Path(__file__).parent / "fixtures"
PASSPHRASE = "unlock test passphrase 93%"
IMAGE = "path=/var/jails/tor.img"
FAILED_ATTACH = "echo 'torjail: geli could not attach md10 (wrong passphrase?): nothing was changed' >&2; exit 1; fi"


@pytest.fixture(autouse=True)
def passphrase(monkeypatch):
    monkeypatch.setenv("TORJAIL_GELI_PASSPHRASE", PASSPHRASE)
    monkeypatch.setattr(secrets, "_CACHE", {})


def fixture(name: str) -> dict:
    return yaml.safe_load((FIXTURES / f"{name}.yaml").read_text(encoding="utf-8"))


def plan_unlock(name: str, **facts):
    loaded = fixture(name)
    return plan(UNLOCK, data=loaded["data"], facts={**copy.deepcopy(loaded["facts"]), **facts})


def test_locked_image_is_attached_checked_and_the_jail_started():
    result = plan_unlock("unlock_locked")
    assert result.commands == [
        "mdconfig -a -t vnode -f /var/jails/tor.img -u 10 >/dev/null && "
        f"if ! geli attach -j - md10; then mdconfig -d -u 10; {FAILED_ATTACH} {STDIN_MARK}",
        "fsck -t ufs -p /dev/md10.eli",
        "jail -f /etc/jail.conf.d/tor.conf -c tor",
    ]


def test_the_passphrase_goes_only_to_the_attach_on_standard_input():
    result = plan_unlock("unlock_locked")
    fed = [command for commands in result.pyinfra_commands() for command in commands
           if command.connector_arguments.get("_stdin") is not None]
    assert len(fed) == 1
    assert fed[0].connector_arguments["_stdin"] == PASSPHRASE
    assert PASSPHRASE not in fed[0].get_raw_value()


def test_attached_md_unit_is_reused_and_not_detached_on_a_wrong_passphrase():
    """A unit that was there before the unlock is not ours to detach."""
    units = {"md10": {"type": "vnode", "size": "8192M", "file": "/var/jails/tor.img"}}
    result = plan_unlock("unlock_locked", **{"md.MdDevices": units})
    assert result.commands[0] == f"if ! geli attach -j - md10; then {FAILED_ATTACH} {STDIN_MARK}"


def test_unlocked_image_with_the_jail_stopped_is_checked_and_started():
    running = fixture("unlock_running")["facts"]
    result = plan_unlock("unlock_locked", **{
        "geli.GeliProviders": running["geli.GeliProviders"], "md.MdDevices": running["md.MdDevices"]})
    assert result.commands == ["fsck -t ufs -p /dev/md10.eli", "jail -f /etc/jail.conf.d/tor.conf -c tor"]


def test_root_left_mounted_by_an_interrupted_deploy_is_handed_to_the_jail():
    running = fixture("unlock_running")["facts"]
    result = plan_unlock("unlock_locked", **{
        "geli.GeliProviders": running["geli.GeliProviders"], "md.MdDevices": running["md.MdDevices"],
        "mount.MountPoints": running["mount.MountPoints"]})
    assert result.commands[0] == "umount /var/jails/tor"
    assert result.commands[-1] == "jail -f /etc/jail.conf.d/tor.conf -c tor"
    assert not any("geli" in command or "mdconfig" in command for command in result.commands)


def test_unlocked_and_running_needs_nothing():
    result = plan_unlock("unlock_running")
    assert result.operations == []


def image_files(state, **image):
    return {IMAGE: {"image": {"state": state, "size": None, "md_unit": None, "seal": None, **image},
                    "marker": None, "record": False, "free_kb": 7340032}}


def test_no_image_says_to_deploy_first():
    with pytest.raises(PyinfraError, match=r"server: there is no encrypted image at /var/jails/tor.img yet "
                                           r"\(jail tor\): run deploy.py first"):
        plan_unlock("unlock_locked", **{"image.ImageFiles": image_files("absent"),
                                        "files.File": {"path=/etc/jail.conf.d/tor.conf": None},
                                        "jail.Jails": {}})


def test_image_without_geli_metadata_is_not_touched():
    with pytest.raises(VaultError, match="carries no GELI metadata"):
        plan_unlock("unlock_locked", **{"image.ImageFiles": image_files("unknown", size=4096, seal="0" * 64)})


def test_missing_image_of_a_host_that_had_one_is_not_reported_as_never_made():
    """With the record of an image made at the path, "run deploy.py first" would send the operator to make a new,
    empty vault."""
    files = image_files("absent")
    files[IMAGE]["record"] = True
    with pytest.raises(VaultMissing, match="server: the encrypted image is missing"):
        plan_unlock("unlock_locked", **{"image.ImageFiles": files,
                                        "files.File": {"path=/etc/jail.conf.d/tor.conf": None}, "jail.Jails": {}})


def test_image_attached_as_another_md_unit_is_never_attached_twice():
    """After md_unit changed, a second mdconfig -a of the same file would put one image on two units (and GELI on
    both): unlock refuses, naming the setting."""
    files = image_files("geli", size=8589934592, md_unit="md7", seal="5" * 64)
    units = {"md7": {"type": "vnode", "size": "8192M", "file": "/var/jails/tor.img"}}
    with pytest.raises(VaultError, match=r"setting 'md_unit' is 10 but /var/jails/tor.img is attached as md7"):
        plan_unlock("unlock_locked", **{"image.ImageFiles": files, "md.MdDevices": units})


def test_unit_attached_to_another_file_is_not_unlocked_in_its_place():
    units = {"md10": {"type": "vnode", "size": "8192M", "file": "/var/jails/old.img"}}
    with pytest.raises(VaultError, match=r"md10 is attached to /var/jails/old.img"):
        plan_unlock("unlock_locked", **{"md.MdDevices": units})
