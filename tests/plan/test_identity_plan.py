"""Offline-master relays in deploy.py and renew_keys.py, planned against a converged server: the relay gets its
signing key, certificate and master public key on standard input only, a master secret key on it stops
everything before any change, and a renewal happens when due (and reloads tor, never restarts it)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from harness import STDIN_MARK, plan, pyinfra_records
from pyinfra.api.exceptions import PyinfraError
from test_deploy_plan import DEPLOY, _merge_facts, passphrase, plan_server, server  # noqa: F401 (a fixture)

from torjail import identity
from torjail.procedures.torkeys import KeySource

ROOT = Path(__file__).resolve().parents[2]
RENEW = ROOT / "renew_keys.py"
KEYS = "path=/var/jails/tor/var/db/tor/keys"
CERT = "path=/var/jails/tor/var/db/tor/keys/ed25519_signing_cert"
RECIPIENT = "age19s9uupdwtthy8lqxy2uefcjzyrffx9wu0dmfxjec8dzjnehea38q7hxyad"
# Distinctive stand-ins for key bytes: none of them, raw or base64, may show up in anything pyinfra records.
FAKE_KEYS = {name: f"== {name} plan-test secret bytes ==".encode() + bytes(range(40)) for name in identity.RELAY_FILES}


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setattr(identity, "relay_keys", lambda settings, environ=None, renewal=False: dict(FAKE_KEYS))
    monkeypatch.delenv("TORJAIL_RENEW_KEYS", raising=False)
    return {"identity": "offline-master", "age_recipient": RECIPIENT, "secrets_dir": str(tmp_path / "secrets")}


def plan_offline(data, deploy=DEPLOY, **facts):
    fixture = server("deploy_converged")
    fixture["data"].update(data)
    return plan(deploy, data=fixture["data"], facts=_merge_facts(fixture["facts"], facts))


def key_operations(result):
    return [op for op in result.operations if op.name.startswith("Offline-made signing key")]


def test_relay_without_a_certificate_gets_the_three_files_on_standard_input(offline):
    result = plan_offline(offline, **{"torkeys.KeyFiles": {KEYS: ["secret_id_key"]}})
    (keys,) = key_operations(result)
    written = [command for command in keys.commands if "base64 -d" in command]
    assert len(written) == 3 and all(command.endswith(STDIN_MARK) for command in written)
    for name in identity.RELAY_FILES:
        assert any(f'mv -f "$R"/var/db/tor/keys/{name}.torjail-new "$R"/var/db/tor/keys/{name}' in c for c in written)
    assert all(command.startswith("jexec tor /bin/sh -c") for command in keys.commands)
    assert any(op.name == "Reload tor (new signing key)" for op in result.changed)
    assert not any("restart" in command for command in result.commands)


def test_no_key_bytes_in_anything_pyinfra_records(offline, capsys, caplog):
    """The keys reach pyinfra only when it executes, on standard input; every record of the run is free of them."""
    result = plan_offline(offline, **{"torkeys.KeyFiles": {KEYS: []}})
    executed = [command for commands in result.pyinfra_commands(executing=True) for command in commands]
    stdin = [command.connector_arguments.get("_stdin") for command in executed]
    assert base64.b64encode(FAKE_KEYS[identity.SIGNING_SECRET]).decode() in stdin  # the bytes do travel
    recorded = pyinfra_records(result) + [capsys.readouterr().out, caplog.text]
    for data in FAKE_KEYS.values():
        for secret in (data.decode("latin-1"), base64.b64encode(data).decode(), data[:16].decode()):
            assert not [text for text in recorded if secret in text]


def test_relay_holding_its_certificate_is_left_alone(offline):
    result = plan_offline(offline, **{"torkeys.KeyFiles": {KEYS: list(identity.RELAY_FILES) + ["secret_id_key"]}})
    assert key_operations(result) == []
    assert not any("(new signing key)" in op.name for op in result.operations)


@pytest.mark.parametrize("planted", ["ed25519_master_id_secret_key", "ed25519_master_id_secret_key_encrypted"])
@pytest.mark.parametrize("deploy", [DEPLOY, RENEW], ids=["deploy", "renew"])
def test_planted_master_key_stops_before_any_change(offline, planted, deploy):
    with pytest.raises(PyinfraError) as error:
        plan_offline(offline, deploy=deploy, **{"torkeys.KeyFiles": {KEYS: [planted, "ed25519_signing_cert"]}})
    assert f"/var/jails/tor/var/db/tor/keys/{planted}" in str(error.value)
    assert "nothing was changed" in str(error.value)


def test_on_relay_identity_may_keep_its_master_key():
    result = plan_server("deploy_converged")
    assert result.changed == []


@pytest.mark.parametrize("days_left, renews", [(29, False), (16, False), (14, True), (-1, True)])
def test_renewal_when_less_than_half_the_lifetime_is_left(offline, days_left, renews):
    expiry = int(time.time()) + days_left * 86400
    result = plan_offline(offline, deploy=RENEW, **{"torkeys.KeyFiles": {KEYS: list(identity.RELAY_FILES)},
                                                    "torkeys.SigningCertExpiry": {CERT: expiry}})
    assert bool(key_operations(result)) == renews
    reloads = [op for op in result.operations if op.name.startswith("Reload tor (new signing key")]
    assert bool(reloads) == renews
    assert all("service -j tor tor reload" in op.commands[0] for op in reloads)


def test_renewal_forced_by_the_environment(offline, monkeypatch):
    monkeypatch.setenv("TORJAIL_RENEW_KEYS", "always")
    result = plan_offline(offline, deploy=RENEW, **{"torkeys.KeyFiles": {KEYS: list(identity.RELAY_FILES)},
                                                    "torkeys.SigningCertExpiry": {CERT: int(time.time()) + 29 * 86400}})
    assert key_operations(result)


def test_renewal_without_the_age_identity_stops_before_any_change(offline, tmp_path, monkeypatch):
    monkeypatch.setenv("TORJAIL_RENEW_KEYS", "always")
    monkeypatch.delenv(identity.IDENTITY_ENV, raising=False)
    monkeypatch.delenv(identity.IDENTITY_FILE_ENV, raising=False)
    master = tmp_path / "secrets" / "server"
    master.mkdir(parents=True)
    (master / "ed25519_master_id_secret_key.age").write_bytes(b"ciphertext")
    with pytest.raises(PyinfraError, match="TORJAIL_AGE_IDENTITY_FILE"):
        plan_offline(offline, deploy=RENEW, **{"torkeys.KeyFiles": {KEYS: list(identity.RELAY_FILES)}})


def test_key_source_shows_only_its_description():
    source = KeySource("offline signing key and certificate", lambda: FAKE_KEYS)
    assert repr(source) == str(source) == "offline signing key and certificate"


def test_renewal_refused_for_an_on_relay_identity():
    with pytest.raises(PyinfraError, match="setting 'identity' is 'on-relay'"):
        plan_server("deploy_converged", deploy=RENEW)


def test_renewal_needs_the_jail_running(offline):
    with pytest.raises(PyinfraError, match="jail tor is not running .unlock.py first.; nothing was changed"):
        plan_offline(offline, deploy=RENEW, **{"torkeys.KeyFiles": {KEYS: []}, "jail.Jails": {}})
