"""A fleet's family on the operator's machine, with the real tor --keygen-family and age: the key is made once and
kept only as ciphertext (0600 files, 0700 directories) that opens with the age identity and no other, its digest
and ID beside it; fingerprints are recorded as the relays report them; every relay's torrc gets the family ID and
the other members' fingerprints, and the local tor accepts it."""

import hashlib
import os
import stat

import pytest
from pyrage import x25519

from torjail import family
from torjail.checks.torrc import check_torrc
from torjail.identity import IdentityError
from torjail.render import render_file
from torjail.settings import SettingsError, build_settings

BASE = {"identity": "on-relay", "relay_contact": "ops@example.org", "family": "fleet"}
FINGERPRINTS = {"relay1": "A" * 40, "relay2": "0123456789ABCDEF0123456789ABCDEF01234567", "relay3": "F" * 40}


@pytest.fixture
def age_key():
    return x25519.Identity.generate()


@pytest.fixture
def fleet(tmp_path, age_key, monkeypatch):
    """Three relays of family "fleet" and one outside it, sharing a secrets directory."""
    monkeypatch.setattr(family, "_MADE_HERE", {})
    common = {**BASE, "age_recipient": str(age_key.to_public()), "secrets_dir": str(tmp_path / "secrets")}
    relays = {f"relay{n}": build_settings(f"relay{n}", {**common, "relay_nickname": f"Relay{n}",
                                                        "public_ipv4": f"198.51.100.{n}"}) for n in (1, 2, 3)}
    relays["other"] = build_settings("other", {**common, "family": "elsewhere", "relay_nickname": "Other",
                                               "public_ipv4": "198.51.100.9"})
    return relays


def test_the_key_is_made_once_and_kept_only_encrypted(fleet, age_key, tmp_path):
    first = family.ensure_key(fleet["relay1"])
    assert family.FAMILY_ID.fullmatch(first)
    assert family.ensure_key(fleet["relay2"]) == first  # one key for the family, whichever relay comes first
    directory = family.family_dir(fleet["relay1"])
    assert sorted(path.name for path in directory.iterdir()) == [
        "fleet.public_family_id", "fleet.secret_family_key.age", "fleet.secret_family_key.sha256"]
    for path in [directory, directory.parent, *directory.iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    secret = family.secret_key(fleet["relay3"])  # made by this process: no age identity needed
    assert secret.startswith(b"== ed25519v1-secret: fmly-id ==")
    ciphertext = (directory / "fleet.secret_family_key.age").read_bytes()
    assert secret not in ciphertext and ciphertext.startswith(b"age-encryption.org/v1")
    assert family.key_digest(fleet["relay1"]) == hashlib.sha256(secret).hexdigest()
    assert not [name for name in os.listdir(tmp_path) if name.startswith("torjail-family-")]


def test_a_later_run_opens_the_key_only_with_the_age_identity(fleet, age_key, tmp_path, monkeypatch):
    family.ensure_key(fleet["relay1"])
    made = family.secret_key(fleet["relay1"])
    monkeypatch.setattr(family, "_MADE_HERE", {})  # a later run of the deploy
    assert family.needs_age_identity(fleet["relay2"])
    with pytest.raises(IdentityError, match="TORJAIL_AGE_IDENTITY_FILE"):
        family.secret_key(fleet["relay2"], environ={})
    assert family.secret_key(fleet["relay2"], environ={"TORJAIL_AGE_IDENTITY": str(age_key)}) == made
    with pytest.raises(IdentityError, match="does not open with this age identity"):
        family.secret_key(fleet["relay2"], environ={"TORJAIL_AGE_IDENTITY": str(x25519.Identity.generate())})


def test_torrc_has_the_family_id_and_the_others_fingerprints(fleet):
    assert family.torrc_lines(fleet["relay1"], fleet.values()) is None  # no key yet
    family_id = family.ensure_key(fleet["relay1"])
    for name in ("relay1", "relay2"):  # relay3's tor has not run yet
        family.record_fingerprint(fleet[name], (fleet[name].relay_nickname, FINGERPRINTS[name]))
    family.ensure_key(fleet["other"])
    family.record_fingerprint(fleet["other"], ("Other", "B" * 40))
    lines = family.torrc_lines(fleet["relay1"], fleet.values())
    assert lines == family.FamilyLines(family_id, (FINGERPRINTS["relay2"],))
    assert family.torrc_lines(fleet["relay3"], fleet.values()).fingerprints == tuple(
        sorted([FINGERPRINTS["relay1"], FINGERPRINTS["relay2"]]))
    torrc = render_file(fleet["relay3"], "torrc.j2", family=family.torrc_lines(fleet["relay3"], fleet.values()))
    assert f"\nFamilyId {family_id}\n" in torrc
    assert f"\nMyFamily ${FINGERPRINTS['relay2']},${FINGERPRINTS['relay1']}\n" in torrc
    assert check_torrc(torrc) == []
    assert "FamilyId" not in render_file(fleet["relay3"], "torrc.j2")


def test_recorded_fingerprint_follows_the_relay(fleet):
    relay = fleet["relay1"]
    assert family.recorded_fingerprint(relay) is None
    family.record_fingerprint(relay, ("Relay1", FINGERPRINTS["relay1"]))
    family.record_fingerprint(relay, ("Relay1", FINGERPRINTS["relay3"]))  # a new identity after a seizure
    path = family._record_path(relay)
    assert path.read_text() == f"Relay1 {FINGERPRINTS['relay3']}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("lines, parsed", [
    (["Relay1 " + "A" * 40], ("Relay1", "A" * 40)),
    (["Relay1 " + "A" * 40, ""], ("Relay1", "A" * 40)),
    (None, None),
    ([], None),
    (["Relay1 " + "a" * 40], None),
    (["Relay1 " + "A" * 39], None),
    (["Relay1 " + "A" * 40, "Relay2 " + "B" * 40], None),
])
def test_fingerprint_file_as_tor_writes_it(lines, parsed):
    assert family.parse_fingerprint(lines) == parsed


@pytest.mark.parametrize("value", ["", "../fleet", "fleet one", "fleet\n", "-fleet", "f" * 33])
def test_bad_family_names_are_refused_naming_the_setting(value, age_key):
    with pytest.raises(SettingsError, match="relay1: setting 'family'"):
        build_settings("relay1", {**BASE, "family": value, "age_recipient": str(age_key.to_public()),
                                  "relay_nickname": "Relay1", "public_ipv4": "198.51.100.1"})


def test_a_family_needs_an_age_recipient():
    with pytest.raises(SettingsError, match="relay1: setting 'age_recipient': is required with a family"):
        build_settings("relay1", {**BASE, "relay_nickname": "Relay1", "public_ipv4": "198.51.100.1"})
