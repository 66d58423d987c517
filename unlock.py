"""Unlock a relay after a reboot: `pyinfra inventory.py unlock.py`.

Attaches the image's md unit and GELI provider (passphrase on standard input), checks the filesystem, and starts
the jail, whose `mount` parameter mounts the encrypted root; tor starts with the jail. Already unlocked and
running: nothing to do. A wrong passphrase: one clear error, nothing changed. The passphrase goes only to a
server presenting the SSH host key recorded at deploy time (torjail.hostkey): an unknown or changed key, or a
connection whose key cannot be read, stops the unlock before anything is asked or sent.
"""

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError

from torjail import hostkey
from torjail.connection import without_nagle
from torjail.freebsd import jail, mount
from torjail.procedures import image
from torjail.freebsd.jail import Jails
from torjail.secrets import geli_passphrase
from torjail.settings import settings_for
from torjail.tasks import lock, vault

settings = settings_for(host)
hostkey.verified(settings, host.connector)  # before anything, the passphrase above all
without_nagle(host.connector)
lock.acquire()  # never while a deploy changes the server
try:
    state = vault.state(settings)
except vault.VaultLocked:
    state = "locked"
except vault.VaultNoRoom:
    state = "create"  # no image, and none would fit: there is nothing to unlock either way
if state == "create":
    raise PyinfraError(f"{host.name}: there is no encrypted image at {settings.image_path} yet: run deploy.py first")

if settings.jail_name in host.get_fact(Jails):
    host.noop(f"jail {settings.jail_name} is already running on its unlocked image")
else:
    if state == "locked":
        image.unlocked(name=f"Unlock {settings.image_path}", image=settings.image_path, unit=settings.md_unit,
                       passphrase=geli_passphrase(settings))
    mount.mount(name="Hand the jail root to the jail's own mount", path=settings.jail_root, mounted=False)
    image.checked_filesystem(name=f"fsck {settings.eli_device}", provider=settings.eli_device,
                             mountpoint=settings.jail_root)
    jail.jail(name=f"Start jail {settings.jail_name}", jail_name=settings.jail_name,
              config=settings.jail_conf_path)
