"""A relay's offline ed25519 identity, on the operator's machine: made and renewed by the real `tor --keygen`,
kept only age-encrypted in the secrets directory.

Whoever holds the master secret key is the relay for good, so it never rests on disk in the clear: tor makes it
(or a new signing key from it) in a private temporary directory that is removed as soon as tor is done, and only
its age ciphertext, to the `age_recipient` public key, is written to `secrets_dir/<host>/`. Making a key needs
only that public key; using an existing master key (a new signing key for a relay that has none, a renewal) needs
the age identity, from TORJAIL_AGE_IDENTITY (the AGE-SECRET-KEY-1... line itself) or TORJAIL_AGE_IDENTITY_FILE
(a file holding it, as age-keygen writes it).
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pyrage
from pyinfra.api.exceptions import PyinfraError

from torjail.checks.torrc import tor_binary

MASTER_SECRET = "ed25519_master_id_secret_key"
MASTER_PUBLIC = "ed25519_master_id_public_key"
SIGNING_SECRET = "ed25519_signing_secret_key"
SIGNING_CERT = "ed25519_signing_cert"
RELAY_FILES = (SIGNING_SECRET, SIGNING_CERT, MASTER_PUBLIC)  # all the relay gets
KEPT_FILES = (MASTER_SECRET, MASTER_PUBLIC)  # all the secrets directory keeps, each as NAME.age
IDENTITY_ENV = "TORJAIL_AGE_IDENTITY"
IDENTITY_FILE_ENV = "TORJAIL_AGE_IDENTITY_FILE"


class IdentityError(PyinfraError):
    """No usable offline identity for a host; the message names the host and the file, never a key."""


def host_dir(settings):
    """This machine's records of one host: its SSH host key, its relays' keys and backups (torjail.seizure retires
    the whole directory)."""
    return Path(settings.secrets_dir) / settings.host_name


def relay_dir(settings):
    """Where one relay's encrypted master key, fingerprint and backups live: the host's directory for its first
    relay (relay_name is the host's name), else jails/JAIL inside it, so a host's records stay in one place."""
    if settings.relay_name == settings.host_name:
        return host_dir(settings)
    return host_dir(settings) / "jails" / settings.jail_name


def private_directory(path):
    """path and every directory made for it, 0700; an existing one is narrowed to 0700 too."""
    path = Path(path)
    if not path.is_dir():
        if not path.parent.exists():
            private_directory(path.parent)
        path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path


def write_encrypted(path, data, recipient):
    """data encrypted to the age recipient, in a new 0600 file (never a file that already exists)."""
    ciphertext = pyrage.encrypt(data, [pyrage.x25519.Recipient.from_str(recipient)])
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "wb") as out:
        out.write(ciphertext)


def age_identity(host_name, environ=None, needed_for="the relay's offline master key is needed"):
    """The operator's age identity, from TORJAIL_AGE_IDENTITY or the file TORJAIL_AGE_IDENTITY_FILE names;
    needed_for says what it is wanted for when neither is set."""
    environ = os.environ if environ is None else environ
    if environ.get(IDENTITY_ENV):
        text, source = environ[IDENTITY_ENV], f"environment variable {IDENTITY_ENV}"
    elif environ.get(IDENTITY_FILE_ENV):
        source = f"{IDENTITY_FILE_ENV} ({environ[IDENTITY_FILE_ENV]})"
        try:
            text = Path(environ[IDENTITY_FILE_ENV]).read_text()
        except OSError as error:
            raise IdentityError(f"{host_name}: cannot read the age identity from {source}: {error.strerror}") from None
    else:
        raise IdentityError(f"{host_name}: {needed_for}: set {IDENTITY_FILE_ENV} to the "
                            f"file holding your age identity (or {IDENTITY_ENV} to the identity itself)")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    try:
        return pyrage.x25519.Identity.from_str(lines[0])
    except (IndexError, pyrage.IdentityError):
        raise IdentityError(f"{host_name}: {source} holds no age identity (AGE-SECRET-KEY-1...)") from None


def _decrypt(host_name, path, identity):
    try:
        return pyrage.decrypt(path.read_bytes(), [identity])
    except pyrage.DecryptError:
        raise IdentityError(f"{host_name}: {path} does not open with this age identity") from None


def keygen(lifetime_days, master=None):
    """{file name: bytes} of tor's keys directory after `tor --keygen`: a new master key, signing key and
    certificate, or (given master: {file name: bytes} of the master keys) a new signing key and certificate for
    it. Every key is in a private temporary directory only for as long as tor runs."""
    work = tempfile.mkdtemp(prefix="torjail-keygen-")  # 0700 by mkdtemp's contract
    try:
        keys = Path(work, "keys")
        keys.mkdir(mode=0o700)
        for name, data in (master or {}).items():
            handle = os.open(keys / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(handle, "wb") as out:
                out.write(data)
        Path(work, "torrc").write_text("")
        result = subprocess.run(
            [tor_binary(), "--keygen", "--no-passphrase", "--defaults-torrc", os.devnull, "-f", f"{work}/torrc",
             "--DataDirectory", work, "--SigningKeyLifetime", f"{lifetime_days} days", "--quiet"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise IdentityError(f"tor --keygen failed: {(result.stdout + result.stderr).strip()[-500:]}")
        return {path.name: path.read_bytes() for path in keys.iterdir() if path.is_file()}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def has_master(settings):
    return (relay_dir(settings) / f"{MASTER_SECRET}.age").exists()


def relay_keys(settings, environ=None, renewal=False):
    """{file name: bytes} the relay gets (signing key, certificate, master public key), from the host's master key
    in the secrets directory (decrypted with the operator's age identity), or, except for a renewal, from a
    master key made now and kept there encrypted."""
    directory = relay_dir(settings)
    if renewal and not has_master(settings):
        raise IdentityError(f"{settings.relay_name}: no master key to renew from: {directory / MASTER_SECRET}.age "
                            "does not exist (secrets_dir)")
    if has_master(settings):
        identity = age_identity(settings.host_name, environ)
        master = {name: _decrypt(settings.host_name, directory / f"{name}.age", identity) for name in KEPT_FILES}
        made = keygen(settings.signing_key_lifetime_days, master)
    else:
        made = keygen(settings.signing_key_lifetime_days)
        private_directory(directory)
        for name in KEPT_FILES:
            write_encrypted(directory / f"{name}.age", made[name], settings.age_recipient)
    return {name: made[name] for name in RELAY_FILES}
