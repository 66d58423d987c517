"""The relay's family in a deploy: the family key made on this machine the first time a relay of that family is
deployed, placed in the relay's keys directory when the relay does not hold it, and the torrc's family lines.

The fingerprints for MyFamily are read from the relays themselves (tor's DataDirectory/fingerprint in each jail)
over the connections of this run, and recorded on this machine (torjail.family) for relays this run does not
reach: a `--limit` run, a relay whose vault is locked. A relay new to the inventory has a fingerprint once its tor
has started; the deploy says so, and the next deploy of the fleet lists it in every other relay's MyFamily.
"""

from pyinfra import host
from pyinfra.context import ctx_host
from pyinfra.facts.files import FileContents, Sha256File

from torjail import family, identity
from torjail.procedures import torkeys
from torjail.procedures.torkeys import KeySource
from torjail.render import jail_path
from torjail.settings import relays_for
from torjail.tasks.keys import keys_directory
from torjail.freebsd import readings

FINGERPRINT_FILE = "/var/db/tor/fingerprint"


def _read_fingerprint(settings, relay):
    """(nickname, fingerprint) the relay's tor reports, recorded on this machine; None when it cannot be read."""
    if not relay.connected:
        return None
    path = jail_path(settings, FINGERPRINT_FILE)
    # this host's own answer may come from its survey (torjail.tasks.survey); another's is asked of it
    text = readings.fact(FileContents, path=path) if relay is ctx_host.get() else relay.get_fact(FileContents,
                                                                                                path=path)
    found = family.parse_fingerprint(text)
    if found is not None:
        family.record_fingerprint(settings, found)
    return found


def _peers(settings):
    """Settings of the other relays of the inventory in the same family (this host's other relay jails among
    them), their fingerprints read where they can be."""
    peers = []
    for server in host.inventory:
        for peer in relays_for(server):
            if peer.relay_name != settings.relay_name and peer.family == settings.family:
                _read_fingerprint(peer, server)
                peers.append(peer)
    return peers


def apply(settings, running):
    """Plan the family key on the relay; returns (torrc family lines or None, whether the key will be placed)."""
    if settings.family is None:
        return None, False
    family.ensure_key(settings)
    _read_fingerprint(settings, ctx_host.get())
    peers = _peers(settings)
    lines = family.torrc_lines(settings, peers)
    unknown = [peer.relay_name for peer in peers if family.recorded_fingerprint(peer) is None]
    if unknown:
        host.noop(f"MyFamily leaves out {', '.join(unknown)}: no fingerprint yet (tor has not run there); "
                  "the next deploy of the fleet adds it")
    name = family.key_name(settings.family)
    held = readings.fact(Sha256File, path=f"{keys_directory(settings)}/{name}")
    if held == family.key_digest(settings):
        host.noop(f"{settings.jail_name} already holds the key of family {settings.family}")
        return lines, False
    if family.needs_age_identity(settings):  # needed now, before any change, not halfway through the run
        identity.age_identity(settings.host_name, needed_for=family.needed_for(settings))
    torkeys.installed(name=f"Key of family {settings.family} in tor's keys directory", jail_name=settings.jail_name,
                      root=settings.jail_root, running=running,
                      source=KeySource(f"secret key of family {settings.family}",
                                       lambda: {name: family.secret_key(settings)}),
                      names=(name,))
    return lines, True
