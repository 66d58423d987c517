"""A fleet's relay family, on the operator's machine: one family key made by the real `tor --keygen-family`, kept
only age-encrypted in the secrets directory, and the fingerprints of the relays, recorded as the relays report them.

Every relay of one family (setting `family`) gets the same secret family key in its keys directory and the
`FamilyId` line (tor 0.4.9's family membership), plus `MyFamily` with the fingerprints of the other relays of
the inventory in that family, which older clients still need. The family's files, under
`secrets_dir/families/<family>/`:
- `<family>.secret_family_key.age`: the secret key, encrypted to `age_recipient`;
- `<family>.public_family_id`: the family ID that goes into every torrc (public);
- `<family>.secret_family_key.sha256`: the key's digest, so that a deploy sees whether a relay holds the key
  without decrypting it (a new relay needs the age identity once; in the run that makes the key, not even that).
A relay's fingerprint (`Nickname FINGERPRINT`, tor's DataDirectory/fingerprint) is recorded in
`secrets_dir/<host>/fingerprint` whenever a deploy reads it, so that a run limited to some relays still lists the
others, and a relay whose vault is locked keeps its place in the family.
"""

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pyrage

from torjail.checks.torrc import tor_binary
from torjail.identity import IdentityError, age_identity, private_directory, relay_dir, write_encrypted

# pyinfra plans its hosts side by side (gevent greenlets, threading patched to match): one relay at a time makes
# the family's key or writes a record, so a family never gets two keys.
_LOCK = threading.Lock()
FINGERPRINT = re.compile(r"^(?P<nickname>[A-Za-z0-9]{1,19}) (?P<fingerprint>[0-9A-F]{40})$")
FAMILY_ID = re.compile(r"^[A-Za-z0-9+/]{43}$")
_MADE_HERE = {}  # family directory -> secret key bytes made by this process (placed without the age identity)


@dataclass(frozen=True)
class FamilyLines:
    """What a relay's torrc says of its family: the family ID and the other members' fingerprints."""

    family_id: str
    fingerprints: tuple = ()


def key_name(family):
    """The key's file name in tor's keys directory (tor loads every *.secret_family_key there)."""
    return f"{family}.secret_family_key"


def family_dir(settings):
    return Path(settings.secrets_dir) / "families" / settings.family


def _paths(settings):
    directory = family_dir(settings)
    name = key_name(settings.family)
    return directory / f"{name}.age", directory / f"{settings.family}.public_family_id", directory / f"{name}.sha256"


def public_id(settings):
    """The family ID of the host's family, None while its key has not been made."""
    _secret, public, _digest = _paths(settings)
    try:
        text = public.read_text().strip()
    except FileNotFoundError:
        return None
    if not FAMILY_ID.fullmatch(text):
        raise IdentityError(f"{settings.host_name}: {public} holds no family ID (setting 'family')")
    return text


def key_digest(settings):
    """sha256 (hex) of the secret family key, as `sha256 -q` prints it on the relay."""
    return _paths(settings)[2].read_text().strip()


def ensure_key(settings):
    """Make the family's key when it does not exist yet; returns the family ID."""
    with _LOCK:
        return _ensure_key(settings)


def _ensure_key(settings):
    existing = public_id(settings)
    if existing is not None:
        return existing
    secret_path, public_path, digest_path = _paths(settings)
    work = tempfile.mkdtemp(prefix="torjail-family-")  # 0700 by mkdtemp's contract
    try:
        base = os.path.join(work, settings.family)
        result = subprocess.run([tor_binary(), "--keygen-family", base, "--quiet"], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise IdentityError(f"{settings.host_name}: tor --keygen-family failed (setting 'family'): "
                                f"{(result.stdout + result.stderr).strip()[-500:]}")
        secret = Path(base + ".secret_family_key").read_bytes()
        family_id = Path(base + ".public_family_id").read_text().strip()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    directory = private_directory(family_dir(settings))
    write_encrypted(secret_path, secret, settings.age_recipient)
    _write_private(digest_path, hashlib.sha256(secret).hexdigest() + "\n")
    _write_private(public_path, family_id + "\n")  # last: its presence says the family is complete
    _MADE_HERE[str(directory)] = secret
    return family_id


def secret_key(settings, environ=None):
    """The secret family key's bytes: made by this run, or decrypted with the operator's age identity."""
    made = _MADE_HERE.get(str(family_dir(settings)))
    if made is not None:
        return made
    identity = age_identity(settings.host_name, environ, needed_for(settings))
    path = _paths(settings)[0]
    try:
        return pyrage.decrypt(path.read_bytes(), [identity])
    except pyrage.DecryptError:
        raise IdentityError(f"{settings.host_name}: {path} does not open with this age identity") from None


def forget_made(settings):
    """The key this run made is no longer the family's (a seizure retired it)."""
    _MADE_HERE.pop(str(family_dir(settings)), None)


def needed_for(settings):
    return f"the key of family {settings.family} (setting 'family') is needed"


def needs_age_identity(settings):
    """Placing the key needs the age identity unless this run made it."""
    return str(family_dir(settings)) not in _MADE_HERE


def recorded_fingerprint(settings):
    """(nickname, fingerprint) a deploy last read from this relay, None when none was ever read."""
    try:
        return parse_fingerprint(_record_path(settings).read_text().splitlines())
    except FileNotFoundError:
        return None


def record_fingerprint(settings, found):
    """Keep what the relay reports (nickname, fingerprint) in secrets_dir/<host>/fingerprint."""
    path = _record_path(settings)
    with _LOCK:
        if recorded_fingerprint(settings) == found:
            return
        private_directory(path.parent)
        staging = path.with_name(path.name + ".new")
        _write_private(staging, f"{found[0]} {found[1]}\n", replace=True)
        os.replace(staging, path)


def parse_fingerprint(lines):
    """(nickname, fingerprint) of tor's fingerprint file (`Nickname FINGERPRINT`), None for anything else."""
    lines = [line.strip() for line in lines or [] if line.strip()]
    match = FINGERPRINT.fullmatch(lines[0]) if len(lines) == 1 else None
    return (match["nickname"], match["fingerprint"]) if match else None


def torrc_lines(settings, peers):
    """The family lines of one relay's torrc, from the family ID and the recorded fingerprints of `peers` (the
    Settings of the other relays of the inventory); None outside a family or before the key exists."""
    if settings.family is None:
        return None
    family_id = public_id(settings)
    if family_id is None:
        return None
    fingerprints = []
    for peer in peers:
        if peer.family == settings.family and peer.relay_name != settings.relay_name:
            found = recorded_fingerprint(peer)
            if found is not None and found[1] not in fingerprints:
                fingerprints.append(found[1])
    return FamilyLines(family_id, tuple(sorted(fingerprints)))


def _record_path(settings):
    return relay_dir(settings) / "fingerprint"


def _write_private(path, text, replace=False):
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    with os.fdopen(os.open(path, flags, 0o600), "w") as out:
        out.write(text)
