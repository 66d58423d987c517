"""Fetching a jail's backup (torjail.backups) from the server: what must hold first, and the one operation that
reads the keys and the GELI metadata and writes the encrypted file on this machine.

Everything is checked while pyinfra plans, so a jail that cannot be backed up (no age_recipient, the vault
locked, the jail stopped, tor without an identity yet) stops the run before anything is read or written. The key
files and the GELI metadata are read only when pyinfra executes (never in a `--dry` run), by commands whose
output pyinfra neither prints nor logs, and reach this machine's disk only encrypted. A relay's backup holds tor's
keys directory, an onion service's its HiddenServiceDir.
"""

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, OperationError, operation
from pyinfra.api.exceptions import PyinfraError

from torjail import backups
from torjail.freebsd import geli, readings
from torjail.freebsd.geli import GeliProviders
from torjail.freebsd.jail import Jails
from torjail.procedures import torkeys
from torjail.procedures.torkeys import FINGERPRINTS, Fingerprints, KeyFiles, OnionAddress
from torjail.render import jail_path
from torjail.tasks import keys



def identity_of(jail):
    """What the backup of a jail that can be backed up now is known by, read while planning (public values): a
    relay's {"fingerprint", "fingerprint_ed25519"}, an onion service's {"onion_address"}; PyinfraError naming
    the host (and the setting, when one is to blame) otherwise, before anything is read."""
    if jail.age_recipient is None:
        raise PyinfraError(f"{host.name}: setting 'age_recipient' is required for a backup: the backup is written "
                           "only encrypted to this age public key; nothing was written")
    if jail.kind == "relay":
        keys.require_no_master_key(jail)
    if jail.eli_device not in readings.fact(GeliProviders):
        raise PyinfraError(f"{host.name}: the vault {jail.image_path} is locked ({jail.eli_device} is not "
                           "attached): run unlock.py first; nothing was written")
    if jail.jail_name not in readings.fact(Jails):
        raise PyinfraError(f"{host.name}: jail {jail.jail_name} is not running: run unlock.py first; nothing "
                           "was written")
    directory, secret = _keys_of(jail)
    if secret not in readings.fact(KeyFiles, path=jail_path(jail, directory)):
        raise PyinfraError(f"{host.name}: tor in jail {jail.jail_name} has no identity key yet "
                           f"({jail_path(jail, directory)}/{secret}); nothing was written")
    try:
        return _fingerprints(jail) if jail.kind == "relay" else {"onion_address": _onion_address(jail)}
    except backups.BackupError as error:
        raise PyinfraError(f"{host.name}: jail {jail.jail_name}: {error}; nothing was written") from None


def _keys_of(jail):
    """(directory in the jail, the file without which there is nothing to back up: an onion service's address
    is its secret key's)."""
    directory = torkeys.KEYS_DIRECTORY if jail.kind == "relay" else torkeys.ONION_DIRECTORY
    return directory, backups.IDENTITY[jail.kind]


def _fingerprints(relay):
    found = readings.fact(Fingerprints, jail_name=relay.jail_name)
    return {"fingerprint": backups.fingerprint_from(found.get("rsa", ""), backups.RSA_FINGERPRINT,
                                                     FINGERPRINTS["rsa"]),
            "fingerprint_ed25519": backups.fingerprint_from(found.get("ed25519", ""), backups.ED25519_FINGERPRINT,
                                                             FINGERPRINTS["ed25519"])}


def _onion_address(service):
    address = readings.fact(OnionAddress, jail_name=service.jail_name) or ""
    if not backups.ONION_ADDRESS.fullmatch(address):
        raise backups.BackupError(f"{torkeys.ONION_HOSTNAME} does not hold an onion address: {address[:80]!r}")
    return address


def _fetch(state, host, jail, known):
    """Run by pyinfra with its state and the host (FunctionCommand's convention); False (logged) on failure."""
    directory, secret = _keys_of(jail)
    try:
        found = torkeys.read_keys(host, jail.jail_name, directory)
        if secret not in found:
            raise OperationError(f"{directory} holds no {secret}")
        metadata = geli.read_backup(host, jail.md_device)
        if jail.kind == "relay":
            backup = backups.make(jail, found, known["fingerprint"], known["fingerprint_ed25519"], metadata)
        else:
            if found.get("hostname", b"").decode(errors="replace").strip() != known["onion_address"]:
                raise OperationError(f"{torkeys.ONION_HOSTNAME} no longer holds {known['onion_address']}")
            backup = backups.make_onion(jail, found, known["onion_address"], metadata)
        path = backups.write(jail, backup)
    except (OperationError, PyinfraError) as error:
        host.log_styled(f"backup failed, nothing was written: {error}", fg="red", log_func=logger.error)
        return False
    host.log(f"backup written to {path}: {len(found)} key files and the GELI metadata of {jail.md_device}; "
             f"{backup.identity}")
    return True


@operation(is_idempotent=False)
def fetched(jail, known: dict):
    """
    Read the jail's key files and GELI metadata backup and write them, age-encrypted, to its directory of
    secrets_dir (torjail.identity.relay_dir).

    + jail: a relay's Settings or an OnionService
    + known: what the jail is known by, as read while planning (``identity_of``)

    **Example:**

    .. code:: python

        backup.fetched(jail, backup.identity_of(jail))
    """
    yield FunctionCommand(_fetch, (jail, known), {})
