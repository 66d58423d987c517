"""The deploy that rebuilds a seized relay: `TORJAIL_SEIZED=relay2 pyinfra inventory.py deploy.py`.

Once per run, before any change: every named relay must be in the inventory and be a fresh server (no encrypted
image, no tor keys: a seized relay comes back on new hardware with a new identity, never with the keys the seizer
holds), and every relay of its family must be in this run (they all get the new family key). Then torjail.seizure
retires what this machine kept of the seized relays and their families, and the deploy of each relay goes on as
usual: the rebuilt relay makes a new identity, every relay of the family gets a new family key and FamilyId. The
old fingerprints are printed for the report to the Tor Project's bad-relays contact.
"""

import os
import threading
import time

from pyinfra import host, logger
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.files import File

from torjail import seizure
from torjail.procedures.torkeys import ONION_DIRECTORY, KeyFiles
from torjail.render import jail_path
from torjail.settings import settings_for
from torjail.tasks.keys import keys_directory
from torjail.tasks.restore import RESTORE_ENV

SEIZED_ENV = "TORJAIL_SEIZED"
_DONE = set()  # id of the pyinfra State whose run has already retired the seized relays
_LOCK = threading.Lock()  # gevent's, once pyinfra has patched threading


def seized_names(environ=None):
    environ = os.environ if environ is None else environ
    return [name.strip() for name in environ.get(SEIZED_ENV, "").split(",") if name.strip()]


def _require_fresh(relay, settings):
    for jail in settings.jail_settings:
        _require_fresh_jail(relay, jail)


def _require_fresh_jail(relay, settings):
    """No image and no tor keys of any jail of the host: a relay's nor an onion service's (its keys, which are its
    address, are the seizer's too)."""
    if relay.get_fact(File, path=settings.image_path):
        raise PyinfraError(f"{relay.name}: {SEIZED_ENV} names it, but the server still has its encrypted image "
                           f"{settings.image_path}; nothing was changed. A seized relay is rebuilt on a fresh "
                           "server (its keys are the seizer's): point the inventory at the new server")
    keys = keys_directory(settings) if settings.kind == "relay" else jail_path(settings, ONION_DIRECTORY)
    if relay.get_fact(KeyFiles, path=keys):
        raise PyinfraError(f"{relay.name}: {SEIZED_ENV} names it, but the server holds tor keys in {keys}; nothing "
                           "was changed")


def apply(environ=None, now=None):
    """Retire the seized relays' records and their families' keys, once per run, after checking everything."""
    names = seized_names(environ)
    if not names:
        return
    with _LOCK:  # pyinfra plans hosts side by side: the first one does it, the others wait and find it done
        if id(host.state) not in _DONE:
            _retire_seized(names, environ, now)
            _DONE.add(id(host.state))


def _retire_seized(names, environ, now):
    relays = {relay.name: relay for relay in host.inventory}
    if (environ if environ is not None else os.environ).get(RESTORE_ENV):
        raise PyinfraError(f"{host.name}: {SEIZED_ENV} and {RESTORE_ENV} are both set; nothing was changed. A "
                           "seized relay or onion service comes back with new keys: its backups hold the keys the "
                           f"seizer has. Deploy without {RESTORE_ENV}")
    unknown = [name for name in names if name not in relays]
    if unknown:
        raise PyinfraError(f"{host.name}: {SEIZED_ENV} names {', '.join(unknown)}, not in the inventory "
                           f"(hosts: {', '.join(relays)}); nothing was changed")
    seized = [(relays[name], settings_for(relays[name])) for name in names]
    families = {peer.family for _relay, peer in seized if peer.family is not None}
    for relay in relays.values():
        peer = settings_for(relay)
        if (relay.name in names or peer.family in families) and not relay.connected:
            raise PyinfraError(f"{relay.name}: must be in this run ({SEIZED_ENV}: it is seized, or in the family "
                               f"of a seized relay, and gets the new family key); nothing was changed")
    for relay, peer in seized:
        _require_fresh(relay, peer)
    moment = time.time() if now is None else now
    for relay, peer in seized:
        old, moved = seizure.retire(peer, moment)
        shown = "; ".join(("" if name == relay.name else f"{name}: ") + (f"{found[0]} {found[1]}" if found else
                                                                          "not recorded on this machine")
                          for name, found in old.items())
        logger.warning(f"{relay.name}: seized: old fingerprint {shown}; report it to the Tor Project's bad-relays "
                       f"contact. Retired: {', '.join(str(path) for path in moved) or 'nothing'}")
