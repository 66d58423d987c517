"""Lock a relay host's vaults (every jail's) now, without a reboot: `pyinfra inventory.py lock.py`.

For when the server should hold nothing readable from this moment on (a provider's notice, a move, an alarm):
stops the jail (tor shuts down through the jail's rc.shutdown, and jail(8) unmounts the encrypted root it
mounted), unmounts the root if a deploy left it mounted with the jail stopped, then detaches the GELI provider
and the md unit. The server is then as after a boot: the image locked, its keys unreadable until unlock.py.
Nothing is deleted, and no passphrase is asked. Already locked: nothing to do.
"""

from pyinfra import host

from torjail.connection import without_nagle
from torjail.freebsd import geli, jail, md, mount, readings
from torjail.freebsd.jail import Jails
from torjail.settings import settings_for
from torjail.tasks import lock

settings = settings_for(host)
without_nagle(host.connector)
lock.acquire()  # never while a deploy changes the server

for relay in settings.jail_settings:
    if relay.jail_name in readings.fact(Jails):
        jail.jail(name=f"Stop jail {relay.jail_name} (tor shuts down, jail(8) unmounts its root)",
                  jail_name=relay.jail_name, running=False, config=relay.jail_conf_path)
    else:
        mount.mount(name=f"Unmount {relay.jail_root}", path=relay.jail_root, mounted=False)
    geli.provider(name=f"Lock {relay.eli_device}", device=relay.md_device, attached=False)
    md.device(name=f"Detach {relay.md_device} from {relay.image_path}", unit=relay.md_unit, present=False)
