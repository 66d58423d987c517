"""Rebuilding a seized relay (TORJAIL_SEIZED), planned: a fresh server is accepted, what this machine kept of the
relay and its family is retired (moved, never deleted) before any change, the old fingerprint is printed, and the
deploy goes on with a new family key; a server that still has its image or tor keys, or a name not in the
inventory, stops the deploy with nothing changed."""

from __future__ import annotations

import logging

import pytest
from harness import plan
from pyinfra.api.exceptions import PyinfraError
from pyrage import x25519
from test_deploy_plan import DEPLOY, _merge_facts, passphrase, server  # noqa: F401 (a fixture)

from torjail import family
from torjail.settings import build_settings
from torjail.tasks import seizure

KEYS = "path=/var/jails/tor/var/db/tor/keys"
OLD_FINGERPRINT = "0123456789ABCDEF0123456789ABCDEF01234567"


@pytest.fixture
def seized(tmp_path, monkeypatch):
    """The fixture's relay, with a family key and a fingerprint recorded by earlier deploys, named as seized."""
    monkeypatch.setattr(family, "_MADE_HERE", {})
    monkeypatch.setattr(seizure, "_DONE", set())
    monkeypatch.setenv("TORJAIL_SEIZED", "server")
    fixture = server("deploy_fresh")
    fixture["data"].update({"family": "fleet", "age_recipient": str(x25519.Identity.generate().to_public()),
                            "secrets_dir": str(tmp_path / "secrets")})
    settings = build_settings("server", fixture["data"])
    old_id = family.ensure_key(settings)
    family.record_fingerprint(settings, (settings.relay_nickname, OLD_FINGERPRINT))
    monkeypatch.setattr(family, "_MADE_HERE", {})  # those were earlier runs
    return {"fixture": fixture, "settings": settings, "old_id": old_id, "secrets": tmp_path / "secrets"}


def plan_seized(seized, **facts):
    fixture = seized["fixture"]
    return plan(DEPLOY, data=fixture["data"], facts=_merge_facts(fixture["facts"], {
        "files.Sha256File": {"path=/var/jails/tor/var/db/tor/keys/fleet.secret_family_key": None},
        "files.FileContents": {"path=/var/jails/tor/var/db/tor/fingerprint": None}, **facts}))


def test_a_fresh_server_retires_the_old_identity_and_family_key(seized, caplog):
    with caplog.at_level(logging.WARNING):
        result = plan_seized(seized, **{"files.File": {"path=/var/jails/tor.img": None}, "torkeys.KeyFiles": {KEYS: []}})
    assert f"server: seized: old fingerprint TestRelay {OLD_FINGERPRINT}" in caplog.text
    (retired,) = (seized["secrets"] / "retired").iterdir()
    assert (retired / "server" / "fingerprint").read_text() == f"TestRelay {OLD_FINGERPRINT}\n"
    assert (retired / "families" / "fleet" / "fleet.public_family_id").read_text().strip() == seized["old_id"]
    assert family.recorded_fingerprint(seized["settings"]) is None
    new_id = family.public_id(seized["settings"])
    assert new_id is not None and new_id != seized["old_id"]  # the deploy made a new family key
    assert "Key of family fleet in tor's keys directory" in [op.name for op in result.operations]


@pytest.mark.parametrize("facts, says", [
    ({"files.File": {"path=/var/jails/tor.img": {"size": 2147483648}}, "torkeys.KeyFiles": {KEYS: []}},
     "the server still has its encrypted image /var/jails/tor.img"),
    ({"files.File": {"path=/var/jails/tor.img": None}, "torkeys.KeyFiles": {KEYS: ["secret_id_key"]}},
     "the server holds tor keys in /var/jails/tor/var/db/tor/keys"),
])
def test_a_server_that_is_not_fresh_stops_the_deploy_and_retires_nothing(seized, facts, says):
    with pytest.raises(PyinfraError, match="server: TORJAIL_SEIZED names it, but " + says) as error:
        plan_seized(seized, **facts)
    assert "nothing was changed" in str(error.value)
    assert not (seized["secrets"] / "retired").exists()
    assert family.public_id(seized["settings"]) == seized["old_id"]


def test_a_name_not_in_the_inventory_stops_the_deploy(seized, monkeypatch):
    monkeypatch.setenv("TORJAIL_SEIZED", "relay9")
    with pytest.raises(PyinfraError, match="TORJAIL_SEIZED names relay9, not in the inventory"):
        plan_seized(seized)
    assert not (seized["secrets"] / "retired").exists()


def test_a_restore_with_a_seizure_stops_the_deploy(seized, monkeypatch, tmp_path):
    monkeypatch.setenv("TORJAIL_RESTORE", str(tmp_path / "backup.tar.age"))
    with pytest.raises(PyinfraError, match="server: TORJAIL_SEIZED and TORJAIL_RESTORE are both set; nothing was "
                                           "changed. A seized relay or onion service comes back with new keys"):
        plan_seized(seized)
    assert not (seized["secrets"] / "retired").exists()


def test_an_onion_service_holding_keys_stops_the_rebuild_of_a_seized_host(seized):
    """The seized host's onion service must come back on a fresh server too: its keys are its address."""
    fixture = seized["fixture"]
    data = {key: value for key, value in fixture["data"].items() if key != "relay_nickname"}
    data["jails"] = [{"kind": "relay", "jail_name": "tor", "jail_ip": "10.0.0.1", "md_unit": 10,
                      "relay_nickname": "TestRelay"},
                     {"kind": "onion-service", "jail_name": "web", "jail_ip": "10.0.0.3", "md_unit": 12,
                      "onion_ports": [80]}]
    facts = _merge_facts(fixture["facts"], {
        "files.File": {"path=/var/jails/tor.img": None, "path=/var/jails/web.img": None},
        "torkeys.KeyFiles": {KEYS: [], "path=/var/jails/web/var/db/tor/onion": ["hs_ed25519_secret_key"]}})
    with pytest.raises(PyinfraError, match="server: TORJAIL_SEIZED names it, but the server holds tor keys in "
                                           "/var/jails/web/var/db/tor/onion; nothing was changed"):
        plan(DEPLOY, data=data, facts=facts)
    assert not (seized["secrets"] / "retired").exists()
