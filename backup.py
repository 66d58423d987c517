"""Back up each relay: `pyinfra inventory.py backup.py`.

Fetches the files of tor's keys directory, the relay's fingerprints and the GELI metadata of its image
(`geli backup` through a pipe, never a file on the server) into one file, age-encrypted to the host's
age_recipient: secrets_dir/<host>/backup-<UTC time>.tar.age (0600, directories 0700). The vault must be unlocked
and the jail running; `--dry` reads and writes nothing. A rebuild from it: TORJAIL_RESTORE (see deploy.py).
"""

from pyinfra import host

from torjail.connection import without_nagle
from torjail.settings import settings_for
from torjail.tasks import backup, lock

settings = settings_for(host)
without_nagle(host.connector)
lock.acquire()
fingerprint, fingerprint_ed25519 = backup.fingerprints(settings)
backup.fetched(name=f"Backup of {settings.jail_name}'s keys and the GELI metadata of {settings.md_device}",
               settings=settings, fingerprint=fingerprint, fingerprint_ed25519=fingerprint_ed25519)
