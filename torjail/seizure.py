"""After a running relay was seized, its keys are the seizer's: the operator's machine retires what it kept of that
relay and of its family, so that the rebuilt relay gets a new identity and the fleet a new family key.

Retired files move (never deleted: they are the seizure record, and the old fingerprint is what the Tor Project's
bad-relays contact needs) to `secrets_dir/retired/<UTC time>/`: the relay's own directory (`<host>/`: its offline
master key, its recorded fingerprint, the SSH host key of the seized server) and the family's (`families/<family>/`). The next `family.ensure_key` makes a
new family key, which every relay of the family gets in the same run.
"""

import os
import time
from pathlib import Path

from torjail import family, identity


def retired_dir(settings, moment):
    return Path(settings.secrets_dir) / "retired" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(moment))


def retire(settings, moment):
    """Move the seized host's kept files (every relay's: `<host>/` holds them all) and its family's aside; returns
    ({relay name: old fingerprint or None} of each relay of the host, moved paths)."""
    old = {relay.relay_name: family.recorded_fingerprint(relay) for relay in settings.relays}
    moved = []
    target = retired_dir(settings, moment)
    sources = [(identity.host_dir(settings), target / settings.host_name)]
    if settings.family is not None:
        sources.append((family.family_dir(settings), target / "families" / settings.family))
    for source, destination in sources:
        if source.exists():
            identity.private_directory(destination.parent)
            os.rename(source, destination)
            moved.append(destination)
    family.forget_made(settings)
    return old, moved
