"""The backup archive on the operator's machine: what it holds comes back whole, it is written only encrypted to
the host's recipient (0600 in 0700 directories, never over an existing file), it does not open without the age
identity, and anything that is not one of our backups is refused naming the host and the file."""

import io
import stat
import tarfile
from pathlib import Path

import pytest
from pyrage import x25519

from torjail import backups, identity
from torjail.settings import SettingsError, build_settings

BASE = {"relay_nickname": "Kept", "relay_contact": "ops@example.org", "public_ipv4": "198.51.100.7",
        "identity": "on-relay"}
KEYS = {"secret_id_key": b"-----BEGIN RSA PRIVATE KEY-----\nbackup test rsa\n",
        "ed25519_master_id_secret_key": b"== ed25519v1-secret: type0 ==\0\0\0" + bytes(range(64)),
        "ed25519_master_id_public_key": b"== ed25519v1-public: type0 ==\0\0\0" + bytes(range(32)),
        "relays.secret_family_key": b"family key bytes"}
GELI = b"GEOM::ELI" + bytes(503)
RSA = "0123456789ABCDEF0123456789ABCDEF01234567"
ED25519 = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcde"  # 43 characters, as tor writes it


@pytest.fixture
def age_key():
    return x25519.Identity.generate()


@pytest.fixture
def settings(tmp_path, age_key):
    return build_settings("relay1", {**BASE, "age_recipient": str(age_key.to_public()),
                                     "secrets_dir": str(tmp_path / "secrets" / "torjail")})


def _backup(settings, keys=KEYS, now=1767225600):
    return backups.make(settings, keys, RSA, ED25519, GELI, now=now)


def test_everything_comes_back_from_the_encrypted_file(settings, age_key):
    path = backups.write(settings, _backup(settings))
    assert path.name == "backup-20260101T000000Z.tar.age" and path.parent == identity.host_dir(settings)
    restored = backups.read(path, "relay1", environ={identity.IDENTITY_ENV: str(age_key)})
    assert restored.keys == KEYS and restored.geli_metadata == GELI
    assert (restored.host_name, restored.made) == ("relay1", "2026-01-01T00:00:00Z")
    assert (restored.fingerprint, restored.fingerprint_ed25519) == (RSA, ED25519)
    assert restored.settings == {"jail_name": "tor", "md_unit": 10, "image_path": "/var/jails/tor.img",
                                 "identity": "on-relay"}


def test_file_is_0600_in_0700_directories_and_holds_no_clear_key(settings):
    path = backups.write(settings, _backup(settings))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (path.parent, path.parent.parent, path.parent.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    data = path.read_bytes()
    assert data.startswith(b"age-encryption.org/v1")
    assert not [name for name, key in KEYS.items() if key[:16] in data] and GELI[:16] not in data


def test_another_age_identity_does_not_open_it(settings):
    path = backups.write(settings, _backup(settings))
    other = x25519.Identity.generate()
    with pytest.raises(backups.BackupError, match=f"relay1: the backup {path} does not open with this age identity"):
        backups.read(path, "relay1", environ={identity.IDENTITY_ENV: str(other)})


def test_no_age_identity_names_the_variables(settings):
    path = backups.write(settings, _backup(settings))
    with pytest.raises(identity.IdentityError, match="relay1: .*TORJAIL_AGE_IDENTITY_FILE"):
        backups.read(path, "relay1", environ={})


def test_an_existing_backup_is_never_overwritten(settings):
    first = backups.write(settings, _backup(settings))
    before = first.read_bytes()
    with pytest.raises(backups.BackupError, match="already exists; it is kept"):
        backups.write(settings, _backup(settings))
    assert first.read_bytes() == before


def test_a_file_that_is_not_a_backup_is_refused(settings, age_key, tmp_path):
    recipient = [age_key.to_public()]
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("notes.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    environ = {identity.IDENTITY_ENV: str(age_key)}
    for name, plain in (("tar.age", archive.getvalue()), ("text.age", b"not a tar at all")):
        (tmp_path / name).write_bytes(backups.pyrage.encrypt(plain, recipient))
        with pytest.raises(backups.BackupError, match=f"relay1: {tmp_path / name} is not a torjail backup"):
            backups.read(tmp_path / name, "relay1", environ=environ)


def test_a_key_name_that_is_a_path_is_refused(settings):
    with pytest.raises(backups.BackupError, match="not a key file name: '../secret_id_key'"):
        _backup(settings, keys={"../secret_id_key": b"x"})


@pytest.mark.parametrize("text", ["", "Kept", "Kept 0123", "Kept 0123456789abcdef0123456789abcdef01234567 x"])
def test_a_fingerprint_file_without_a_fingerprint_is_refused(text):
    with pytest.raises(backups.BackupError, match="does not hold a fingerprint"):
        backups.fingerprint_from(text, backups.RSA_FINGERPRINT, "/var/db/tor/fingerprint")


def test_repr_shows_no_key(settings):
    shown = repr(_backup(settings))
    assert RSA in shown and not [name for name, key in KEYS.items() if repr(key)[2:20] in shown]


def test_backups_never_go_into_the_repository(age_key):
    inside = str(Path(backups.__file__).resolve().parents[1] / "secrets")
    with pytest.raises(SettingsError, match="relay1: setting 'secrets_dir': expected a directory outside the repo"):
        build_settings("relay1", {**BASE, "age_recipient": str(age_key.to_public()), "secrets_dir": inside})


ADDRESS = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
ONION_KEYS = {"hs_ed25519_secret_key": b"== ed25519v1-secret: type0 ==\0\0\0" + bytes(range(64)),
              "hs_ed25519_public_key": b"== ed25519v1-public: type0 ==\0\0\0" + bytes(range(32)),
              "hostname": ADDRESS.encode() + b"\n"}


@pytest.fixture
def onion(tmp_path, age_key):
    jails = [{"kind": "relay", "jail_name": "tor", "jail_ip": "10.0.0.1", "md_unit": 10, "relay_nickname": "Kept"},
             {"kind": "onion-service", "jail_name": "web", "jail_ip": "10.0.0.3", "md_unit": 12,
              "onion_ports": [80]}]
    settings = build_settings("relay1", {**{k: v for k, v in BASE.items() if k != "relay_nickname"}, "jails": jails,
                                         "age_recipient": str(age_key.to_public()),
                                         "secrets_dir": str(tmp_path / "secrets" / "torjail")})
    return settings.onion_services[0]


def test_an_onion_services_keys_and_address_come_back_in_its_own_directory(onion, age_key):
    path = backups.write(onion, backups.make_onion(onion, ONION_KEYS, ADDRESS, GELI, now=1767225600))
    assert path.parent == identity.host_dir(onion) / "jails" / "web"
    restored = backups.read(path, "relay1", environ={identity.IDENTITY_ENV: str(age_key)})
    assert (restored.kind, restored.host_name, restored.onion_address) == ("onion-service", "relay1/web", ADDRESS)
    assert restored.keys == ONION_KEYS and restored.geli_metadata == GELI
    assert restored.fingerprint is None and restored.identity == f"onion address {ADDRESS}"
    assert restored.settings == {"jail_name": "web", "md_unit": 12, "image_path": "/var/jails/web.img"}


def test_an_onion_backup_without_an_onion_address_is_refused(onion):
    with pytest.raises(backups.BackupError, match="relay1/web: not an onion address: 'example.org'"):
        backups.make_onion(onion, ONION_KEYS, "example.org", GELI)
    unusual = backups.Backup("relay1/web", "2026-01-01T00:00:00Z", {"jail_name": "web", "md_unit": 12,
                                                                  "image_path": "/var/jails/web.img"},
                             None, None, ONION_KEYS, GELI, "onion-service", "example.org")
    with pytest.raises(backups.BackupError, match="is not a torjail backup"):
        backups.unpack(backups.pack(unusual), "relay1: test")


def test_a_backup_of_format_1_is_still_read_as_a_relays(settings):
    """Backups made before onion services were backed up name no kind: they are relays'."""
    archive = io.BytesIO(backups.pack(_backup(settings)))
    members = {}
    with tarfile.open(fileobj=archive, mode="r:") as tar:
        for info in tar.getmembers():
            members[info.name] = tar.extractfile(info).read()
    manifest = backups.json.loads(members[backups.MANIFEST])
    assert manifest.pop("kind") == "relay" and manifest["format"] == 2
    manifest["format"] = 1
    members[backups.MANIFEST] = backups.json.dumps(manifest).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    restored = backups.unpack(out.getvalue(), "relay1: old")
    assert (restored.kind, restored.fingerprint, restored.keys) == ("relay", RSA, KEYS)


def test_a_backup_without_its_identity_key_is_refused(settings, onion):
    """A damaged or hand-made backup that could not bring the jail back is refused, not restored as nothing."""
    relay = backups.pack(_backup(settings, keys={"relays.secret_family_key": b"family key bytes"}))
    with pytest.raises(backups.BackupError, match="relay1: old holds no secret_id_key: it cannot bring the relay"):
        backups.unpack(relay, "relay1: old")
    keys = {name: data for name, data in ONION_KEYS.items() if name != "hs_ed25519_secret_key"}
    service = backups.pack(backups.make_onion(onion, keys, ADDRESS, GELI))
    with pytest.raises(backups.BackupError, match="holds no hs_ed25519_secret_key: it cannot bring the onion-serv"):
        backups.unpack(service, "relay1: old")


def test_an_onion_backup_whose_hostname_is_another_address_is_refused(onion):
    other = "a" * 56 + ".onion"
    packed = backups.pack(backups.make_onion(onion, {**ONION_KEYS, "hostname": other.encode() + b"\n"}, ADDRESS,
                                             GELI))
    with pytest.raises(backups.BackupError, match=f"its hostname file is not its onion address {ADDRESS}"):
        backups.unpack(packed, "relay1: old")
