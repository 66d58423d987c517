"""A relay of a family in deploy.py, planned against a converged server: the first deploy makes the family key on
this machine and places it on the relay on standard input only (no key bytes in anything pyinfra records), torrc
gets FamilyId and tor is reloaded; a relay holding the key gets nothing; a later run that must place the key needs
the age identity before any change; the relay's fingerprint is recorded on this machine."""

from __future__ import annotations

import base64
import hashlib

import pytest
from harness import STDIN_MARK, plan, pyinfra_records
from pyinfra.api.exceptions import PyinfraError
from pyrage import x25519
from test_deploy_plan import DEPLOY, _merge_facts, passphrase, server  # noqa: F401 (a fixture)

from torjail import family
from torjail.render import render_file
from torjail.settings import build_settings

TORRC = "path=/var/jails/tor/usr/local/etc/tor/torrc"
FAMILY_KEY = "path=/var/jails/tor/var/db/tor/keys/fleet.secret_family_key"
FINGERPRINT = "path=/var/jails/tor/var/db/tor/fingerprint"
RELAY_FINGERPRINT = "0123456789ABCDEF0123456789ABCDEF01234567"


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    monkeypatch.setattr(family, "_MADE_HERE", {})
    monkeypatch.delenv("TORJAIL_AGE_IDENTITY", raising=False)
    monkeypatch.delenv("TORJAIL_AGE_IDENTITY_FILE", raising=False)
    age_key = x25519.Identity.generate()
    return {"data": {"family": "fleet", "age_recipient": str(age_key.to_public()),
                     "secrets_dir": str(tmp_path / "secrets")}, "age_key": age_key}


def plan_family(fleet, held=None, torrc_family=False, **facts):
    fixture = server("deploy_converged")
    fixture["data"].update(fleet["data"])
    settings = build_settings("server", fixture["data"])
    nickname = fixture["data"]["relay_nickname"]
    facts = {"files.Sha256File": {FAMILY_KEY: held}, "files.FileContents": {FINGERPRINT: [
        f"{nickname} {RELAY_FINGERPRINT}"]}, **facts}
    if torrc_family:
        lines = family.torrc_lines(settings, [settings])
        torrc = render_file(settings, "torrc.j2", family=lines)
        facts["files.Sha1File"] = {TORRC: hashlib.sha1(torrc.encode()).hexdigest()}
    return plan(DEPLOY, data=fixture["data"], facts=_merge_facts(fixture["facts"], facts)), settings


def test_first_deploy_makes_the_key_places_it_on_stdin_and_reloads_tor(fleet, capsys, caplog):
    result, settings = plan_family(fleet)
    (placed,) = [op for op in result.operations if op.name == "Key of family fleet in tor's keys directory"]
    written = [command for command in placed.commands if "base64 -d" in command]
    assert len(written) == 1 and written[0].endswith(STDIN_MARK)
    assert ('mv -f "$R"/var/db/tor/keys/fleet.secret_family_key.torjail-new '
            '"$R"/var/db/tor/keys/fleet.secret_family_key') \
        in written[0]
    changed = [op.name for op in result.changed]
    assert "torrc (checked by tor --verify-config in the jail)" in changed
    assert "Reload tor (new family key)" in changed
    secret = family.secret_key(settings)
    executed = [command for commands in result.pyinfra_commands(executing=True) for command in commands]
    assert base64.b64encode(secret).decode() in [command.connector_arguments.get("_stdin") for command in executed]
    recorded = pyinfra_records(result) + [capsys.readouterr().out, caplog.text]
    for text in (base64.b64encode(secret).decode(), secret[32:48].hex(), secret.decode("latin-1")):
        assert not [record for record in recorded if text in record]
    assert family.recorded_fingerprint(settings) == (settings.relay_nickname, RELAY_FINGERPRINT)


def test_a_relay_holding_the_key_with_its_torrc_gets_nothing(fleet):
    _result, settings = plan_family(fleet)  # makes the key
    result, _settings = plan_family(fleet, held=family.key_digest(settings), torrc_family=True)
    assert result.changed == []
    assert any(op.name.startswith("tor running") for op in result.operations)


def test_placing_the_key_in_a_later_run_needs_the_age_identity_before_any_change(fleet, monkeypatch):
    plan_family(fleet, held=None)
    monkeypatch.setattr(family, "_MADE_HERE", {})  # a later run: the key exists only encrypted
    needed = r"server: the key of family fleet \(setting 'family'\) is needed: set TORJAIL_AGE_IDENTITY_FILE"
    with pytest.raises(PyinfraError, match=needed):
        plan_family(fleet, held="0" * 64)
    monkeypatch.setenv("TORJAIL_AGE_IDENTITY", str(fleet["age_key"]))
    result, settings = plan_family(fleet, held="0" * 64)
    assert "Key of family fleet in tor's keys directory" in [op.name for op in result.changed]
