"""Converge a FreeBSD server into a Tor relay host: `pyinfra inventory.py deploy.py` (add `--dry --diff` to preview).

A relay rebuilt after a seizure (TORJAIL_SEIZED, see torjail.tasks.seizure) leaves its old records behind first.
Then the server must present the SSH host key recorded at its first deploy (recorded now when there is
none, see torjail.hostkey), then one command takes the server's deploy lock (one deploy at a time) and reads what
the steps will ask (torjail.tasks.survey). Order matters: the base
(modules, sysctls), encrypted swap, the encrypted image (the vault), the jail populated in it, tor inside the
jail, then the firewall. While plain swap is still active (too little free memory to move it now), nothing after
swap runs: the vault's keys and tor wait for the reboot into encrypted swap. A host listing several jails gets
each one's vault and jail, then their addresses on the cloned loopback, each one's tor (a relay's, or an onion
service's with its services: torjail.tasks.onion), and one pf.conf for them all. Every step reads the validated
settings of the host or of one of its jails, nothing else.
"""

from pyinfra import host

from torjail import hostkey
from torjail.settings import settings_for
from torjail.tasks import base, firewall, jail, lock, onion, preflight, seizure, survey, swap, tor, vault

seizure.apply()  # TORJAIL_SEIZED: retire what this machine kept of a seized relay, first
hostkey.pinned(settings_for(host), host.connector)
survey.apply(settings_for(host))  # the deploy lock, then what the steps will ask: one command
lock.acquire()  # or stop with who holds it
settings = preflight.apply()  # the host's, ext_if resolved to the server's interface; each relay in .relays
jail.unlisted(settings)  # a jail taken off the list: stopped by hand first; what it left is said and kept
base.apply(settings)
if swap.apply(settings):  # False while plain swap stays active: fstab is written, the rest waits for a reboot
    for each in settings.jail_settings:  # a relay's or an onion service's
        vault.apply(each)
        jail.apply(each)
    jail.addresses(settings)
    for each in settings.jail_settings:
        (tor if each.kind == "relay" else onion).apply(each)
    firewall.apply(settings)
