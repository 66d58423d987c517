"""Backups and restores planned against fake servers: deploy.py with TORJAIL_RESTORE places the backup's key files
before tor first starts, on standard input only and never over another identity; a backup that is not this host's,
was made under another identity setting or does not open stops everything before any change; backup.py refuses a
relay it cannot back up, naming the host and the setting, and plans no read before pyinfra executes."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from harness import STDIN_MARK, plan, pyinfra_records
from pyinfra.api.command import FunctionCommand
from pyinfra.api.exceptions import PyinfraError
from pyrage import x25519
from test_deploy_plan import DEPLOY, _merge_facts, passphrase, planned_operations, server  # noqa: F401 (fixtures)

from torjail import backups, identity
from torjail.settings import build_settings

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "backup.py"
KEYS = {"secret_id_key": b"-----BEGIN RSA PRIVATE KEY-----\nplan test rsa identity\n",
        "ed25519_master_id_secret_key": b"== ed25519v1-secret: type0 ==\0\0\0plan test master secret",
        "ed25519_master_id_public_key": b"== ed25519v1-public: type0 ==\0\0\0plan test master public",
        "secret_onion_key_ntor": b"plan test onion key bytes"}
RSA = "0123456789ABCDEF0123456789ABCDEF01234567"
ED25519 = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcde"
STOPPED = "directory=/var/db/tor/keys, jail_name=tor, " \
          "names=('secret_id_key', 'ed25519_master_id_secret_key', 'ed25519_master_id_public_key'), " \
          "root=/var/jails/tor, running=False"
RUNNING = STOPPED.replace("running=False", "running=True")
KEY_DIR = "path=/var/jails/tor/var/db/tor/keys"


@pytest.fixture
def age_key(tmp_path, monkeypatch):
    key = x25519.Identity.generate()
    monkeypatch.setenv(identity.IDENTITY_ENV, str(key))
    return key


def _backup_file(tmp_path, age_key, host_name="server", mode="on-relay", keys=KEYS):
    settings = build_settings(host_name, {"relay_nickname": "Kept", "relay_contact": "ops@example.org",
                                          "public_ipv4": "198.51.100.7", "identity": mode,
                                          "age_recipient": str(age_key.to_public()),
                                          "secrets_dir": str(tmp_path / "made" / host_name)})
    return backups.write(settings, backups.make(settings, keys, RSA, ED25519, b"GEOM::ELI" + bytes(503)))


def _plan(name, facts=None, data=None, deploy=DEPLOY):
    fixture = server(name)
    fixture["data"].update(data or {})
    return plan(deploy, data=fixture["data"], facts=_merge_facts(fixture["facts"], facts or {}))


def _restore_ops(result):
    return [op for op in result.operations if op.name.startswith("Key files of the backup")]


def test_fresh_server_gets_the_backup_keys_before_the_jail_starts(tmp_path, age_key, monkeypatch, capsys, caplog):
    monkeypatch.setenv("TORJAIL_RESTORE", str(_backup_file(tmp_path, age_key)))
    result = _plan("deploy_fresh", {"torkeys.KeyDigests": {STOPPED: {}}})
    (restore,) = _restore_ops(result)
    names = [op.name for op in result.operations]
    assert names.index(restore.name) < names.index("Start jail tor")
    written = [command for command in restore.commands if "base64 -d" in command]
    assert len(written) == len(KEYS) and all(command.endswith(STDIN_MARK) for command in written)
    assert all(command.startswith("/bin/sh -c 'R=/var/jails/tor; for p in /var/jails/tor/var ")
               for command in restore.commands)  # the host's shell, never the jail's (no chroot)
    assert "/var/db/tor/keys/secret_onion_key_ntor.torjail-new" in written[-1]  # the identity first
    for command, name in zip(written, ("ed25519_master_id_public_key", "ed25519_master_id_secret_key",
                                       "secret_id_key")):
        assert f'cmp -s "$R"/var/db/tor/keys/{name}.torjail-new "$R"/var/db/tor/keys/{name};' in command  # kept
    assert "cmp" not in written[-1]
    executed = [command for commands in result.pyinfra_commands(executing=True) for command in commands]
    stdin = [command.connector_arguments.get("_stdin") for command in executed]
    assert base64.b64encode(KEYS["secret_id_key"]).decode() in stdin  # the bytes do travel, on standard input
    recorded = pyinfra_records(result) + [capsys.readouterr().out, caplog.text]
    for data in KEYS.values():
        for secret in (base64.b64encode(data).decode(), data[-16:].decode("latin-1")):
            assert not [text for text in recorded if secret in text]


def test_relay_holding_the_backup_identity_gets_nothing(tmp_path, age_key, monkeypatch):
    monkeypatch.setenv("TORJAIL_RESTORE", str(_backup_file(tmp_path, age_key)))
    held = {name: hashlib.sha256(data).hexdigest() for name, data in KEYS.items() if name != "secret_onion_key_ntor"}
    result = _plan("deploy_converged", {"torkeys.KeyDigests": {RUNNING: held}})
    assert _restore_ops(result) == []
    assert [(op.name, op.commands) for op in result.changed] == []


@pytest.mark.parametrize("other", ["secret_id_key", "ed25519_master_id_public_key"])
def test_relay_holding_another_identity_stops_before_any_change(tmp_path, age_key, monkeypatch, other,
                                                                 planned_operations):
    monkeypatch.setenv("TORJAIL_RESTORE", str(_backup_file(tmp_path, age_key)))
    held = {other: hashlib.sha256(b"another relay").hexdigest()}
    with pytest.raises(PyinfraError, match=rf"server: TORJAIL_RESTORE=.*: the relay already holds another identity "
                                           rf"\({other} in /var/jails/tor/var/db/tor/keys .*nothing was changed"):
        _plan("deploy_converged", {"torkeys.KeyDigests": {RUNNING: held}})
    assert planned_operations == []


def test_backup_of_another_host_stops_before_any_change(tmp_path, age_key, monkeypatch, planned_operations):
    monkeypatch.setenv("TORJAIL_RESTORE", str(_backup_file(tmp_path, age_key, host_name="relay9")))
    with pytest.raises(PyinfraError, match="is the backup of relay9, not of server; nothing was changed"):
        _plan("deploy_fresh")
    assert planned_operations == []


def test_backup_made_under_another_identity_setting_stops(tmp_path, age_key, monkeypatch):
    monkeypatch.setenv("TORJAIL_RESTORE", str(_backup_file(tmp_path, age_key)))
    offline = {"identity": "offline-master", "age_recipient": str(age_key.to_public()),
               "secrets_dir": str(tmp_path / "secrets")}
    with pytest.raises(PyinfraError, match="setting 'identity' is 'offline-master' but the backup was made with "
                                           "'on-relay'; nothing was changed"):
        _plan("deploy_fresh", {"torkeys.KeyFiles": {KEY_DIR: []}}, data=offline)


def test_backup_that_does_not_open_stops(tmp_path, age_key, monkeypatch):
    path = _backup_file(tmp_path, age_key)
    monkeypatch.setenv("TORJAIL_RESTORE", str(path))
    monkeypatch.setenv(identity.IDENTITY_ENV, str(x25519.Identity.generate()))
    with pytest.raises(PyinfraError, match=f"server: the backup {path} does not open with this age identity"):
        _plan("deploy_fresh")


def _backup_facts(**facts):
    return {"torkeys.KeyFiles": {KEY_DIR: ["secret_id_key", "ed25519_master_id_secret_key"]},
            "torkeys.Fingerprints": {"jail_name=tor": {"rsa": f"Test {RSA}", "ed25519": f"Test {ED25519}"}}, **facts}


def test_backup_is_one_operation_that_reads_only_when_pyinfra_executes(tmp_path, age_key):
    data = {"age_recipient": str(age_key.to_public()), "secrets_dir": str(tmp_path / "secrets"),
            "identity": "on-relay"}
    result = _plan("deploy_converged", _backup_facts(), data=data, deploy=BACKUP)
    (fetch,) = result.operations
    commands = [command for commands in result.pyinfra_commands() for command in commands]
    assert len(commands) == 1 and isinstance(commands[0], FunctionCommand)
    assert not (tmp_path / "secrets").exists()  # planned (or --dry): nothing written


def test_backup_needs_an_age_recipient(tmp_path):
    with pytest.raises(PyinfraError, match="server: setting 'age_recipient' is required for a backup"):
        _plan("deploy_converged", _backup_facts(), data={"identity": "on-relay"}, deploy=BACKUP)


def test_backup_needs_the_vault_unlocked_and_the_jail_running(tmp_path, age_key):
    data = {"age_recipient": str(age_key.to_public()), "secrets_dir": str(tmp_path / "secrets"),
            "identity": "on-relay"}
    with pytest.raises(PyinfraError, match="server: the vault /var/jails/tor.img is locked .*unlock.py first"):
        _plan("deploy_converged", _backup_facts(**{"geli.GeliProviders": {}}), data=data, deploy=BACKUP)
    with pytest.raises(PyinfraError, match="server: jail tor is not running: run unlock.py first"):
        _plan("deploy_converged", _backup_facts(**{"jail.Jails": {}}), data=data, deploy=BACKUP)
    assert not (tmp_path / "secrets").exists()
