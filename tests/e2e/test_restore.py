"""End to end on lab hosts with the real tor: backup.py writes a relay's keys and GELI metadata only encrypted,
0600, with no key in pyinfra's output at -vvv; after the loss of its hardware (the lab host destroyed), the same
inventory entry on a new lab host with a new address, deployed with TORJAIL_RESTORE, comes back with the same
fingerprints and family, and deploying again changes nothing.

The tests run in file order: each step starts from the state the previous one left.
"""

import base64
import contextlib
import os
import shutil
import stat
import tempfile

import pytest
from pyrage import decrypt, x25519

from lab import host
from relay import changes, relay_host
from torjail import backups

pytestmark = pytest.mark.lab

OLD, NEW = ("bkold", 50), ("bknew", 51)
FINGERPRINT = "jexec tor /usr/local/bin/tor --list-fingerprint -f /usr/local/etc/tor/torrc --User _tor --quiet"
ED25519_FILE = "/var/jails/tor/var/db/tor/fingerprint-ed25519"


@pytest.fixture(scope="module")
def lab():
    secrets = tempfile.mkdtemp(prefix="torjail-restore-secrets-")
    age_key = x25519.Identity.generate()
    identity_file = os.path.join(secrets, "age-identity.txt")
    with open(os.open(identity_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
        handle.write(f"{age_key}\n")
    os.environ["TORJAIL_AGE_IDENTITY_FILE"] = identity_file
    state = type("Lab", (), {})()
    state.age_key = age_key
    state.secrets = os.path.join(secrets, "torjail")
    state.settings = {"age_recipient": str(age_key.to_public()), "secrets_dir": state.secrets,
                      "relay_nickname": "TorjailKept", "family": "kept"}
    with contextlib.ExitStack() as stack:
        state.old = stack.enter_context(relay_host(*OLD))
        state.new_host = lambda: stack.enter_context(relay_host(*NEW))
        yield state
    os.environ.pop("TORJAIL_AGE_IDENTITY_FILE", None)
    shutil.rmtree(secrets)


def _run(relay, deploy_file, *args, settings, **env):
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        return relay.pyinfra(deploy_file, *args, settings=settings)
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)


def _fingerprints(relay):
    rsa = relay.run(FINGERPRINT)[1].split(None, 1)[1].replace(" ", "").strip()
    return rsa, relay.run(f"cat {ED25519_FILE}")[1].split()[1]


def _keys(lab):
    with open(lab.backup, "rb") as handle:
        return backups.unpack(decrypt(handle.read(), [lab.age_key]), lab.backup).keys


def _backups(lab):
    directory = os.path.join(lab.secrets, OLD[0])
    names = os.listdir(directory) if os.path.isdir(directory) else []
    return sorted(os.path.join(directory, name) for name in names if name.startswith("backup-"))


def test_backup_is_encrypted_0600_and_no_key_reaches_the_output(lab):
    deployed = _run(lab.old, "deploy.py", settings=lab.settings)
    assert deployed.returncode == 0, deployed.stdout[-5000:]
    dry = _run(lab.old, "backup.py", "--dry", settings=lab.settings)
    assert dry.returncode == 0 and _backups(lab) == [], dry.stdout[-3000:]
    result = _run(lab.old, "backup.py", "-vvv", settings=lab.settings)
    assert result.returncode == 0, result.stdout[-5000:]
    (path,) = _backups(lab)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    with open(path, "rb") as handle:
        ciphertext = handle.read()
    with pytest.raises(Exception):
        decrypt(ciphertext, [x25519.Identity.generate()])
    backup = backups.unpack(decrypt(ciphertext, [lab.age_key]), path)
    assert backup.host_name == OLD[0] and backup.settings["identity"] == "on-relay"
    assert {"secret_id_key", "ed25519_master_id_secret_key", "ed25519_master_id_public_key"} <= set(backup.keys)
    assert backup.geli_metadata.startswith(b"GEOM::ELI")
    assert (backup.fingerprint, backup.fingerprint_ed25519) == _fingerprints(lab.old)
    assert backup.fingerprint in result.stdout and backup.fingerprint_ed25519 in result.stdout
    on_relay = lab.old.run("base64 -w0 /var/jails/tor/var/db/tor/keys/secret_id_key")[1].strip()
    assert on_relay == base64.b64encode(backup.keys["secret_id_key"]).decode()
    pem_lines = [line for line in backup.keys["secret_id_key"].decode().splitlines() if "-----" not in line]
    for data in [*backup.keys.values(), backup.geli_metadata]:
        for text in (base64.b64encode(data).decode()[:24], data.hex()[:24]):
            assert text not in result.stdout
    assert pem_lines and not [line for line in pem_lines if line in result.stdout]
    lab.fingerprints = (backup.fingerprint, backup.fingerprint_ed25519)
    lab.backup = path


def test_a_backup_for_another_host_is_refused_before_any_change(lab):
    result = _run(lab.old, "deploy.py", settings=lab.settings, TORJAIL_RESTORE=lab.backup, TORJAIL_LAB_ALIAS="other")
    assert result.returncode != 0
    assert f"is the backup of {OLD[0]}, not of other; nothing was changed" in result.stdout, result.stdout[-3000:]


def test_rebuild_after_hardware_loss_has_the_same_fingerprints(lab):
    host.destroy(OLD[0], log=lambda text: None)
    new = lab.new_host()
    assert new.address != lab.old.address
    record = os.path.join(lab.secrets, OLD[0], "ssh_host_key")
    refused = _run(new, "deploy.py", settings=lab.settings, TORJAIL_RESTORE=lab.backup, TORJAIL_LAB_ALIAS=OLD[0])
    assert refused.returncode != 0 and record in refused.stdout, refused.stdout[-3000:]  # new server, new host key
    os.remove(record)  # the README's step 2, the new key checked out of band
    result = _run(new, "deploy.py", "-vvv", settings=lab.settings, TORJAIL_RESTORE=lab.backup,
                  TORJAIL_LAB_ALIAS=OLD[0])
    assert result.returncode == 0, result.stdout[-5000:]
    assert _fingerprints(new) == lab.fingerprints
    key = "/var/jails/tor/var/db/tor/keys/kept.secret_family_key"  # the same family: the backup's key, FamilyId
    assert new.run(f"base64 -w0 {key}")[1].strip() == base64.b64encode(_keys(lab)["kept.secret_family_key"]).decode()
    family_id = open(os.path.join(lab.secrets, "families", "kept", "kept.public_family_id")).read().strip()
    assert f"\nFamilyId {family_id}\n" in new.run("cat /var/jails/tor/usr/local/etc/tor/torrc")[1]
    assert not [name for name, data in _keys(lab).items() if base64.b64encode(data).decode()[:24] in result.stdout]
    lab.new = new


def test_second_restore_deploy_changes_nothing(lab):
    result = _run(lab.new, "deploy.py", "-v", settings=lab.settings, TORJAIL_RESTORE=lab.backup,
                  TORJAIL_LAB_ALIAS=OLD[0])
    assert result.returncode == 0, result.stdout[-5000:]
    assert changes(result.stdout) == 0, result.stdout[-5000:]
    assert "already holds the identity of the backup" in result.stdout
    assert _fingerprints(lab.new) == lab.fingerprints

