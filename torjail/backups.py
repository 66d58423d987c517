"""A jail's backup on the operator's machine: one age file that brings a relay, or an onion service, back on new
hardware with the identity it had.

A relay's backup holds the files of tor's keys directory (the RSA identity, on-relay the ed25519 master secret
key, family keys) and the relay's two fingerprints; an onion service's the files of its HiddenServiceDir (the
service's secret key, which is its address) and its onion address. Both hold the GELI metadata of the jail's image
(`geli backup`), the settings a rebuild needs to know about and when it was made, as a tar archive encrypted with
age to the `age_recipient` of the host. It is written once, to a new 0600 file in the jail's directory of
`secrets_dir` (directories 0700), and never rests in the clear: it is built and opened in memory only, and
nothing of it is ever extracted to disk.
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

FORMAT = 2  # 2 names the jail's kind, and backs up onion services; 1 (relays only) is still read
FORMATS = (1, 2)
MANIFEST = "manifest.json"
KEYS = "keys/"
GELI_METADATA = "geli-metadata"
KEY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")  # what tor names its key files; no path, no option
RSA_FINGERPRINT = re.compile(r"[0-9A-F]{40}")
ED25519_FINGERPRINT = re.compile(r"[A-Za-z0-9+/]{43}")
ONION_ADDRESS = re.compile(r"[a-z2-7]{56}\.onion")  # a v3 onion address, as tor writes it in hostname
SETTINGS = {"relay": ("jail_name", "md_unit", "image_path", "identity"),  # what the jail was built with
            "onion-service": ("jail_name", "md_unit", "image_path")}
IDENTITY = {"relay": "secret_id_key", "onion-service": "hs_ed25519_secret_key"}  # no backup without it


class BackupError(PyinfraError):
    """A backup that cannot be made, read or used; the message names the host and the file, never a key."""


@dataclass(frozen=True)
class Backup:
    host_name: str  # the jail's name (relay_name): its host's, or HOST/JAIL for another listed jail
    made: str  # UTC, ISO 8601
    settings: dict
    fingerprint: str | None  # a relay's RSA identity, 40 hex digits as tor writes it
    fingerprint_ed25519: str | None  # a relay's, base64 without padding, as tor writes it
    keys: dict = field(repr=False)  # {file name: bytes} of tor's keys directory, or of the HiddenServiceDir
    geli_metadata: bytes = field(repr=False)
    kind: str = "relay"  # or "onion-service"
    onion_address: str | None = None  # an onion service's, as tor writes it

    def digests(self):
        """{file name: sha256 hex} of the key files, to compare with the jail's without moving a key."""
        return {name: hashlib.sha256(data).hexdigest() for name, data in self.keys.items()}

    @property
    def identity(self):
        """What the backup brings back, in words: a relay's fingerprints or an onion service's address."""
        if self.kind == "onion-service":
            return f"onion address {self.onion_address}"
        return f"fingerprint {self.fingerprint}, ed25519 {self.fingerprint_ed25519}"


def fingerprint_from(text, pattern, path):
    """The fingerprint of one of tor's fingerprint files ("NICKNAME FINGERPRINT")."""
    words = text.split()
    if len(words) != 2 or not pattern.fullmatch(words[1]):
        raise BackupError(f"{path} does not hold a fingerprint: {text.strip()[:80]!r}")
    return words[1]


def _made(jail, keys, now):
    for name in keys:
        if not KEY_NAME.fullmatch(name):
            raise BackupError(f"{jail.host_name}: not a key file name: {name!r}")
    made = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))
    return made, {name: getattr(jail, name) for name in SETTINGS[jail.kind]}


def make(settings, keys, fingerprint, fingerprint_ed25519, geli_metadata, now=None):
    """A Backup of the relay of settings."""
    made, kept = _made(settings, keys, now)
    return Backup(settings.relay_name, made, kept, fingerprint, fingerprint_ed25519, dict(keys), geli_metadata)


def make_onion(service, keys, onion_address, geli_metadata, now=None):
    """A Backup of an onion service (torjail.settings.jails.OnionService)."""
    if not ONION_ADDRESS.fullmatch(onion_address):
        raise BackupError(f"{service.relay_name}: not an onion address: {onion_address[:80]!r}")
    made, kept = _made(service, keys, now)
    return Backup(service.relay_name, made, kept, None, None, dict(keys), geli_metadata, "onion-service",
                  onion_address)


def pack(backup):
    """The tar archive (bytes) of a Backup."""
    manifest = {"format": FORMAT, "kind": backup.kind, "host": backup.host_name, "made": backup.made,
                "settings": backup.settings, "keys": sorted(backup.keys)}
    if backup.kind == "relay":
        manifest.update(fingerprint=backup.fingerprint, fingerprint_ed25519=backup.fingerprint_ed25519)
    else:
        manifest["onion_address"] = backup.onion_address
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
        if manifest.get("format") not in FORMATS:
            raise BackupError(f"{source}: backup format {manifest.get('format')!r}, expected one of "
                              f"{', '.join(map(str, FORMATS))}")
        kind = manifest.get("kind", "relay")  # format 1 backed up relays only
        keys = {name: members[KEYS + name] for name in manifest["keys"]}
        relay = kind == "relay"
        backup = Backup(manifest["host"], manifest["made"], manifest["settings"],
                        manifest["fingerprint"] if relay else None, manifest["fingerprint_ed25519"] if relay else None,
                        keys, members[GELI_METADATA], kind, None if relay else manifest["onion_address"])
    except (tarfile.TarError, KeyError, TypeError, ValueError) as error:
        if isinstance(error, BackupError):
            raise
        raise BackupError(f"{source} is not a torjail backup ({type(error).__name__}: {error})") from None
    if kind not in SETTINGS or not all(KEY_NAME.fullmatch(name) for name in keys) \
            or set(backup.settings) != set(SETTINGS[kind]) \
            or not (relay or ONION_ADDRESS.fullmatch(str(backup.onion_address))):
        raise BackupError(f"{source} is not a torjail backup (unexpected kind, key names, settings or address)")
    if IDENTITY[kind] not in keys:
        raise BackupError(f"{source} holds no {IDENTITY[kind]}: it cannot bring the {kind} back")
    if not relay and keys.get("hostname", backup.onion_address.encode()).strip() != backup.onion_address.encode():
        raise BackupError(f"{source}: its hostname file is not its onion address {backup.onion_address}")
    return backup


def write(settings, backup):
    """Encrypt backup to the host's age_recipient into a new file of the jail's directory of secrets_dir
    (torjail.identity.relay_dir); returns its path."""
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
