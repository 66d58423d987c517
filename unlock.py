"""Unlock a relay host after a reboot: `pyinfra inventory.py unlock.py`.

Attaches the image's md unit and GELI provider (passphrase on standard input), checks the filesystem, and starts
the jail, whose `mount` parameter mounts the encrypted root; tor starts with the jail. Already unlocked and
running: nothing to do. A host of several jails (relays, onion services) gets each one unlocked and started, with
one passphrase prompt for those that share the host's passphrase settings (torjail.secrets). A wrong passphrase: one clear error,
nothing changed. The passphrase goes only to a
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


def vault_state(relay):
    try:
        state = vault.state(relay)
    except vault.VaultLocked:
        state = "locked"
    except vault.VaultNoRoom:
        state = "create"  # no image, and none would fit: there is nothing to unlock either way
    if state == "create":
        raise PyinfraError(f"{host.name}: there is no encrypted image at {relay.image_path} yet (jail "
                           f"{relay.jail_name}): run deploy.py first; nothing was changed")
    return state


states = [vault_state(relay) for relay in settings.jail_settings]  # every image's, before anything changes
for relay, state in zip(settings.jail_settings, states):
    if relay.jail_name in host.get_fact(Jails):
        host.noop(f"jail {relay.jail_name} is already running on its unlocked image")
        continue
    if state == "locked":
        image.unlocked(name=f"Unlock {relay.image_path}", image=relay.image_path, unit=relay.md_unit,
                       passphrase=geli_passphrase(relay))
    mount.mount(name="Hand the jail root to the jail's own mount", path=relay.jail_root, mounted=False)
    image.checked_filesystem(name=f"fsck {relay.eli_device}", provider=relay.eli_device, mountpoint=relay.jail_root)
    jail.jail(name=f"Start jail {relay.jail_name}", jail_name=relay.jail_name, config=relay.jail_conf_path)
