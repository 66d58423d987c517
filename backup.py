"""Back up each jail: `pyinfra inventory.py backup.py`.

For a relay, fetches the files of tor's keys directory, its fingerprints and the GELI metadata of its image
(`geli backup` through a pipe, never a file on the server) into one file, age-encrypted to the host's
age_recipient: secrets_dir/<host>/backup-<UTC time>.tar.age (0600, directories 0700); a listed relay not named
tor gets its own in secrets_dir/<host>/jails/<jail>/. For an onion service, the same with the files of its
HiddenServiceDir and its onion address, always in secrets_dir/<host>/jails/<jail>/: the address stays the
service's after a rebuild. Every jail of the host is backed up, or none: the vaults must be unlocked and the
jails running. `--dry` reads and writes nothing. A rebuild from it: TORJAIL_RESTORE (see deploy.py).
"""

from pyinfra import host

from torjail.connection import without_nagle
from torjail.settings import settings_for
from torjail.tasks import backup, lock

settings = settings_for(host)
without_nagle(host.connector)
lock.acquire()
known = [backup.identity_of(jail) for jail in settings.jail_settings]  # every jail can be backed up, or none is
for jail, identity in zip(settings.jail_settings, known):
    backup.fetched(name=f"Backup of {jail.jail_name}'s keys and the GELI metadata of {jail.md_device}",
                   jail=jail, known=identity)
