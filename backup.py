"""Back up each relay: `pyinfra inventory.py backup.py`.

Fetches the files of tor's keys directory, the relay's fingerprints and the GELI metadata of its image
(`geli backup` through a pipe, never a file on the server) into one file, age-encrypted to the host's
age_recipient: secrets_dir/<host>/backup-<UTC time>.tar.age (0600, directories 0700); a listed relay jail not
named tor gets its own in secrets_dir/<host>/jails/<jail>/. The vault must be unlocked
and the jail running; `--dry` reads and writes nothing. A rebuild from it: TORJAIL_RESTORE (see deploy.py).
"""

from pyinfra import host

from torjail.connection import without_nagle
from torjail.settings import settings_for
from torjail.tasks import backup, lock

settings = settings_for(host)
without_nagle(host.connector)
lock.acquire()
found = [backup.fingerprints(relay) for relay in settings.relays]  # every relay can be backed up, or none is
for relay, (fingerprint, fingerprint_ed25519) in zip(settings.relays, found):
    backup.fetched(name=f"Backup of {relay.jail_name}'s keys and the GELI metadata of {relay.md_device}",
                   settings=relay, fingerprint=fingerprint, fingerprint_ed25519=fingerprint_ed25519)
