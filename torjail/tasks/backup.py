"""Fetching a relay's backup (torjail.backups) from the server: what must hold first, and the one operation that
reads the keys and the GELI metadata and writes the encrypted file on this machine.

Everything is checked while pyinfra plans, so a relay that cannot be backed up (no age_recipient, the vault
locked, the jail stopped, tor without an identity yet) stops the run before anything is read or written. The key
files and the GELI metadata are read only when pyinfra executes (never in a `--dry` run), by commands whose
output pyinfra neither prints nor logs, and reach this machine's disk only encrypted.
"""

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, OperationError, operation
from pyinfra.api.exceptions import PyinfraError

from torjail import backups
from torjail.freebsd import geli
from torjail.procedures import torkeys
from torjail.freebsd.geli import GeliProviders
from torjail.freebsd.jail import Jails
from torjail.procedures.torkeys import FINGERPRINTS, Fingerprints, KeyFiles
from torjail.tasks import keys
from torjail.freebsd import readings

RSA_IDENTITY = "secret_id_key"


def fingerprints(settings):
    """(RSA, ed25519) fingerprints of a relay that can be backed up now; PyinfraError naming the host (and the
    setting, when one is to blame) otherwise, before anything is read."""
    if settings.age_recipient is None:
        raise PyinfraError(f"{host.name}: setting 'age_recipient' is required for a backup: the backup is written "
                           "only encrypted to this age public key; nothing was written")
    keys.require_no_master_key(settings)
    if settings.eli_device not in readings.fact(GeliProviders):
        raise PyinfraError(f"{host.name}: the vault {settings.image_path} is locked ({settings.eli_device} is not "
                           "attached): run unlock.py first; nothing was written")
    if settings.jail_name not in readings.fact(Jails):
        raise PyinfraError(f"{host.name}: jail {settings.jail_name} is not running: run unlock.py first; nothing "
                           "was written")
    if RSA_IDENTITY not in readings.fact(KeyFiles, path=keys.keys_directory(settings)):
        raise PyinfraError(f"{host.name}: tor in jail {settings.jail_name} has no identity key yet "
                           f"({keys.keys_directory(settings)}/{RSA_IDENTITY}); nothing was written")
    found = readings.fact(Fingerprints, jail_name=settings.jail_name)
    try:
        return (backups.fingerprint_from(found.get("rsa", ""), backups.RSA_FINGERPRINT, FINGERPRINTS["rsa"]),
                backups.fingerprint_from(found.get("ed25519", ""), backups.ED25519_FINGERPRINT,
                                         FINGERPRINTS["ed25519"]))
    except backups.BackupError as error:
        raise PyinfraError(f"{host.name}: jail {settings.jail_name}: {error}; nothing was written") from None


def _fetch(state, host, settings, fingerprint, fingerprint_ed25519):
    """Run by pyinfra with its state and the host (FunctionCommand's convention); False (logged) on failure."""
    try:
        found = torkeys.read_keys(host, settings.jail_name)
        if RSA_IDENTITY not in found:
            raise OperationError(f"tor's keys directory holds no {RSA_IDENTITY}")
        backup = backups.make(settings, found, fingerprint, fingerprint_ed25519,
                              geli.read_backup(host, settings.md_device))
        path = backups.write(settings, backup)
    except (OperationError, PyinfraError) as error:
        host.log_styled(f"backup failed, nothing was written: {error}", fg="red", log_func=logger.error)
        return False
    host.log(f"backup written to {path}: {len(found)} key files and the GELI metadata of {settings.md_device}; "
               f"fingerprint {fingerprint}, ed25519 {fingerprint_ed25519}")
    return True


@operation(is_idempotent=False)
def fetched(settings, fingerprint: str, fingerprint_ed25519: str):
    """
    Read the relay's key files and GELI metadata backup and write them, age-encrypted, to its directory of
    secrets_dir (torjail.identity.relay_dir).

    + settings: the relay's Settings
    + fingerprint, fingerprint_ed25519: the relay's fingerprints, as read while planning

    **Example:**

    .. code:: python

        backup.fetched(settings, *backup.fingerprints(settings))
    """
    yield FunctionCommand(_fetch, (settings, fingerprint, fingerprint_ed25519), {})
