"""Renew an offline-master relay's signing key and certificate: `pyinfra inventory.py renew_keys.py`.

tor --keygen makes them on this machine from the relay's master key (decrypted with the age identity of
TORJAIL_AGE_IDENTITY_FILE or TORJAIL_AGE_IDENTITY), they go into the jail's keys directory, and tor is reloaded,
never restarted. Renewed when less than half of signing_key_lifetime_days is left, or always with
TORJAIL_RENEW_KEYS=always; otherwise nothing changes. A master secret key on the relay stops it before any
change, and so does an SSH host key other than the one recorded at deploy time (torjail.hostkey): the new
signing key goes only to the relay.
"""

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError

from torjail import hostkey, identity
from torjail.connection import without_nagle
from torjail.freebsd import service
from torjail.freebsd.jail import Jails
from torjail.settings import settings_for
from torjail.tasks import keys, lock

settings = settings_for(host)
hostkey.pinned(settings, host.connector)
without_nagle(host.connector)
lock.acquire()
relays = [relay for relay in settings.relays if relay.offline_master_key]
if not relays:
    raise PyinfraError(f"{host.name}: setting 'identity' is 'on-relay': tor renews its own signing key there")
for relay in relays:  # everything checked before any key is made
    keys.require_no_master_key(relay)
    if relay.jail_name not in host.get_fact(Jails):
        raise PyinfraError(f"{host.name}: jail {relay.jail_name} is not running (unlock.py first); nothing was "
                           "changed")
for relay in relays:
    due, why = keys.renewal_due(relay)
    if due:
        keys.install(relay, True, lambda relay=relay: identity.relay_keys(relay, renewal=True))
        service.reloaded(name=f"Reload tor (new signing key: {why})", service="tor", jail=relay.jail_name)
    else:
        host.noop(f"{why}: no renewal due" + ("" if len(relays) == 1 else f" ({relay.jail_name})"))
