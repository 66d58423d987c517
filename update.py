"""Patch a relay host: `pyinfra inventory.py update.py` (add `--dry --diff` to see what would be updated).

The host's base system (freebsd-update) and packages (pkg upgrade), then each running jail's packages (tor with
`pkg -j`) and userland, to the latest patch level of their release; see torjail.tasks.update. The server must
present the SSH host key recorded at its first deploy, and the run holds the server's deploy lock, as deploy.py.
A second run against a patched host changes nothing.
"""

from pyinfra import host

from torjail import hostkey
from torjail.connection import without_nagle
from torjail.settings import settings_for
from torjail.tasks import lock, update

settings = settings_for(host)
hostkey.pinned(settings, host.connector)
without_nagle(host.connector)
lock.acquire()
update.host_patched()
for each in settings.jail_settings:
    update.jail_patched(each)
