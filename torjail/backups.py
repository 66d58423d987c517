"""A relay's backup on the operator's machine: one age file that brings the relay back on new hardware.

A backup holds the files of tor's keys directory (the RSA identity, on-relay the ed25519 master secret key, family
keys), the relay's two fingerprints, the GELI metadata of its image (`geli backup`), the settings a rebuild needs
to know about and when it was made, as a tar archive encrypted with age to the `age_recipient` of the host. It is
written once, to a new 0600 file in `secrets_dir/<host>/` (directories 0700), and never rests in the clear: it is
built and opened in memory only, and nothing of it is ever extracted to disk.
"""

import hashlib
import io
import json
import re
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyrage
from pyinfra.api.exceptions import PyinfraError

from torjail import identity

FORMAT = 1
MANIFEST = "manifest.json"
KEYS = "keys/"
GELI_METADATA = "geli-metadata"
KEY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")  # what tor names its key files; no path, no option
RSA_FINGERPRINT = re.compile(r"[0-9A-F]{40}")
ED25519_FINGERPRINT = re.compile(r"[A-Za-z0-9+/]{43}")
SETTINGS = ("jail_name", "md_unit", "image_path", "identity")  # what the relay was built with


class BackupError(PyinfraError):
    """A backup that cannot be made, read or used; the message names the host and the file, never a key."""


@dataclass(frozen=True)
class Backup:
    host_name: str  # the relay's name (relay_name): its host's, or HOST/JAIL for another listed relay
    made: str  # UTC, ISO 8601
    settings: dict
    fingerprint: str  # RSA identity, 40 hex digits as tor writes it
    fingerprint_ed25519: str  # base64 without padding, as tor writes it
    keys: dict = field(repr=False)  # {file name: bytes} of tor's keys directory
    geli_metadata: bytes = field(repr=False)

    def digests(self):
        """{file name: sha256 hex} of the key files, to compare with the relay's without moving a key."""
        return {name: hashlib.sha256(data).hexdigest() for name, data in self.keys.items()}


def fingerprint_from(text, pattern, path):
    """The fingerprint of one of tor's fingerprint files ("NICKNAME FINGERPRINT")."""
    words = text.split()
    if len(words) != 2 or not pattern.fullmatch(words[1]):
        raise BackupError(f"{path} does not hold a fingerprint: {text.strip()[:80]!r}")
    return words[1]


def make(settings, keys, fingerprint, fingerprint_ed25519, geli_metadata, now=None):
    """A Backup of the relay of settings."""
    for name in keys:
        if not KEY_NAME.fullmatch(name):
            raise BackupError(f"{settings.host_name}: not a key file name: {name!r}")
    made = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))
    return Backup(settings.relay_name, made, {name: getattr(settings, name) for name in SETTINGS}, fingerprint,
                  fingerprint_ed25519, dict(keys), geli_metadata)


def pack(backup):
    """The tar archive (bytes) of a Backup."""
    manifest = {"format": FORMAT, "host": backup.host_name, "made": backup.made, "settings": backup.settings,
                "fingerprint": backup.fingerprint, "fingerprint_ed25519": backup.fingerprint_ed25519,
                "keys": sorted(backup.keys)}
    members = {MANIFEST: json.dumps(manifest, indent=2).encode() + b"\n", GELI_METADATA: backup.geli_metadata,
               **{KEYS + name: data for name, data in sorted(backup.keys.items())}}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, 0
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def unpack(data, source):
    """The Backup of a tar archive; BackupError naming source when it is not one of ours."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            members = {info.name: archive.extractfile(info).read() for info in archive.getmembers() if info.isfile()}
        manifest = json.loads(members[MANIFEST])
        if manifest.get("format") != FORMAT:
            raise BackupError(f"{source}: backup format {manifest.get('format')!r}, expected {FORMAT}")
        keys = {name: members[KEYS + name] for name in manifest["keys"]}
        backup = Backup(manifest["host"], manifest["made"], manifest["settings"], manifest["fingerprint"],
                        manifest["fingerprint_ed25519"], keys, members[GELI_METADATA])
    except (tarfile.TarError, KeyError, TypeError, ValueError) as error:
        if isinstance(error, BackupError):
            raise
        raise BackupError(f"{source} is not a torjail backup ({type(error).__name__}: {error})") from None
    if not all(KEY_NAME.fullmatch(name) for name in keys) or set(backup.settings) != set(SETTINGS):
        raise BackupError(f"{source} is not a torjail backup (unexpected key names or settings)")
    return backup


def write(settings, backup):
    """Encrypt backup to the host's age_recipient into a new file of secrets_dir/<host>/; returns its path."""
    folder = identity.private_directory(identity.relay_dir(settings))
    path = folder / f"backup-{backup.made.replace('-', '').replace(':', '')}.tar.age"
    try:
        identity.write_encrypted(path, pack(backup), settings.age_recipient)
    except FileExistsError:
        raise BackupError(f"{settings.host_name}: {path} already exists; it is kept, nothing was written") from None
    return path


def read(path, host_name, environ=None):
    """The Backup in the age file at path, decrypted with the operator's age identity."""
    path = Path(path).expanduser()
    age = identity.age_identity(host_name, environ, needed_for=f"the backup {path} is to be opened")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BackupError(f"{host_name}: cannot read the backup {path}: {error.strerror}") from None
    try:
        plain = pyrage.decrypt(data, [age])
    except pyrage.DecryptError:
        raise BackupError(f"{host_name}: the backup {path} does not open with this age identity") from None
    return unpack(plain, f"{host_name}: {path}")
