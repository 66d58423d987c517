"""The offline identity on the operator's machine, with the real tor --keygen and age: the secrets directory
holds only ciphertext (0600 files, 0700 directories) that opens with the age identity and no other, the
plaintext master key is gone once tor is done, and a renewal keeps the master key and makes a new certificate."""

import os
import stat
from pathlib import Path

import pytest
from pyrage import x25519

from torjail import identity
from torjail.settings import build_settings

BASE = {"relay_nickname": "Offline", "relay_contact": "ops@example.org", "public_ipv4": "198.51.100.7"}


@pytest.fixture
def age_key():
    return x25519.Identity.generate()


@pytest.fixture
def settings(tmp_path, age_key, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    identity.tempfile.tempdir = None  # TMPDIR is read again
    yield build_settings("relay1", {**BASE, "age_recipient": str(age_key.to_public()),
                                    "secrets_dir": str(tmp_path / "secrets" / "torjail")})
    identity.tempfile.tempdir = None


def test_new_master_key_is_kept_only_encrypted(settings, age_key, tmp_path):
    relay = identity.relay_keys(settings)
    assert sorted(relay) == sorted(identity.RELAY_FILES)
    assert relay[identity.SIGNING_CERT].startswith(b"== ed25519v1-cert: type4 ==")
    kept = identity.host_dir(settings)
    files = sorted(path.name for path in kept.iterdir())
    assert files == ["ed25519_master_id_public_key.age", "ed25519_master_id_secret_key.age"]
    for path in kept.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert b"ed25519v1" not in path.read_bytes()
    for directory in (kept, kept.parent, kept.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    master = identity.pyrage.decrypt((kept / "ed25519_master_id_secret_key.age").read_bytes(), [age_key])
    assert master.startswith(b"== ed25519v1-secret: type0 ==")
    assert list((tmp_path / "tmp").iterdir()) == []  # tor's private directory is gone


def test_ciphertext_does_not_open_without_the_age_identity(settings):
    identity.relay_keys(settings)
    other = x25519.Identity.generate()
    with pytest.raises(identity.pyrage.DecryptError):
        identity.pyrage.decrypt((identity.host_dir(settings) / "ed25519_master_id_secret_key.age").read_bytes(),
                                [other])
    with pytest.raises(identity.IdentityError, match="does not open with this age identity"):
        identity.relay_keys(settings, environ={identity.IDENTITY_ENV: str(other)})


def test_renewal_keeps_the_master_and_makes_a_new_certificate(settings, age_key, tmp_path):
    first = identity.relay_keys(settings)
    key_file = tmp_path / "age-identity.txt"
    key_file.write_text(f"# created: now\n{age_key}\n")
    renewed = identity.relay_keys(settings, environ={identity.IDENTITY_FILE_ENV: str(key_file)}, renewal=True)
    assert renewed[identity.MASTER_PUBLIC] == first[identity.MASTER_PUBLIC]
    assert renewed[identity.SIGNING_CERT] != first[identity.SIGNING_CERT]
    assert renewed[identity.SIGNING_SECRET] != first[identity.SIGNING_SECRET]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_renewal_needs_a_master_key_and_an_identity(settings):
    with pytest.raises(identity.IdentityError, match="no master key to renew from"):
        identity.relay_keys(settings, environ={}, renewal=True)
    identity.relay_keys(settings)
    with pytest.raises(identity.IdentityError, match="TORJAIL_AGE_IDENTITY_FILE"):
        identity.relay_keys(settings, environ={}, renewal=True)


def test_signing_key_lifetime_reaches_the_certificate(settings):
    """tor --keygen is given SigningKeyLifetime: the certificate expires that many days from now (to the hour)."""
    import time

    cert = identity.relay_keys(settings)[identity.SIGNING_CERT]
    expiry = int.from_bytes(cert[34:38], "big") * 3600
    assert abs(expiry - (time.time() + 30 * 86400)) < 2 * 3600
