"""A relay or an onion service rebuilt from its backup (torjail.backups):
`TORJAIL_RESTORE=FILE pyinfra inventory.py deploy.py`.

A restore is a one-off action, not a state to converge to, so it is asked for in the environment. Its key files go
into tor's keys directory (an onion service's: its HiddenServiceDir) before tor first starts there, so the relay
comes back with the fingerprint and family it had, and the onion service with its address. Everything is checked
while pyinfra plans, before any change: the backup opens with the operator's age identity, it is one jail's of
this host (its inventory name, and HOST/JAIL for a listed jail other than tor) and of that jail's kind, a relay's
was made under the same `identity` setting, and the jail holds no identity key of its own that differs from the
backup's. An identity is never overwritten: the same check runs again on the server as each file is placed. A
jail that already holds the backup's identity gets nothing. An offline-master relay gets a new signing key and
certificate from its master key (torjail.tasks.keys), not the backup's, which may have expired.
"""

import os
import weakref

import pyrage
from pyinfra import host
from pyinfra.api.exceptions import PyinfraError
from pyinfra.context import ctx_host

from torjail import backups, identity
from torjail.procedures import torkeys
from torjail.freebsd.jail import Jails
from torjail.procedures.torkeys import KeyDigests, KeySource
from torjail.freebsd import readings

RESTORE_ENV = "TORJAIL_RESTORE"
IDENTITY_FILES = ("secret_id_key", identity.MASTER_SECRET, identity.MASTER_PUBLIC)  # what makes the relay itself
ONION_IDENTITY_FILES = ("hs_ed25519_secret_key", "hs_ed25519_public_key")  # what makes the onion service's address
OFFLINE_FILES = (identity.SIGNING_SECRET, identity.SIGNING_CERT)  # made anew from the master key

_planned: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # per host: planning asks twice


def planned(settings, environ=None):
    """(backup, files to place) when a restore into this jail (a relay's Settings or an OnionService) is asked
    for and may go ahead, None when none is asked for or the backup is another jail's; PyinfraError naming the
    host, the file and the setting otherwise. Read once per host while planning."""
    environ = os.environ if environ is None else environ
    if not environ.get(RESTORE_ENV):
        return None
    per_host = _planned.setdefault(ctx_host.get(), {})
    key = (environ[RESTORE_ENV], settings.relay_name)
    if key not in per_host:
        per_host[key] = _check(settings, environ[RESTORE_ENV], environ)
    return per_host[key]


def _read(settings, path, environ):
    """The backup at path, read once per host."""
    per_host = _planned.setdefault(ctx_host.get(), {})
    if path not in per_host:
        per_host[path] = backups.read(path, settings.host_name, environ)
    return per_host[path]


def require_owner(settings, environ=None):
    """The backup to restore is one jail's of this host (`settings`: the host's): its inventory name for the
    host's first relay, HOST/JAIL for another listed jail (torjail.settings: relay_name)."""
    environ = os.environ if environ is None else environ
    if not environ.get(RESTORE_ENV):
        return
    backup = _read(settings, environ[RESTORE_ENV], environ)
    names = [jail.relay_name for jail in settings.jail_settings]
    if backup.host_name not in names:
        raise PyinfraError(f"{host.name}: {RESTORE_ENV}={environ[RESTORE_ENV]} is the backup of "
                           f"{backup.host_name}, not of {' or '.join(names)}; nothing was changed. Restore a "
                           "relay under its own inventory name (and, for a listed jail, its own jail_name)")


def _check(settings, path, environ):
    backup = _read(settings, path, environ)
    source = f"{host.name}: {RESTORE_ENV}={path}"
    if backup.host_name != settings.relay_name:
        if backup.host_name.split("/")[0] == settings.host_name:
            return None  # another relay's of this host: that relay restores it (require_owner checks one does)
        raise PyinfraError(f"{source} is the backup of {backup.host_name}, not of {settings.relay_name}; nothing "
                           "was changed. Restore a relay under its own inventory name")
    if backup.kind != settings.kind:
        raise PyinfraError(f"{source} is the backup of a jail of kind '{backup.kind}', but {settings.relay_name} "
                           f"is of kind '{settings.kind}'; nothing was changed")
    if settings.kind == "onion-service":
        return _check_onion(settings, backup, source)
    if backup.settings["identity"] != settings.identity:
        raise PyinfraError(f"{source}: setting 'identity' is {settings.identity!r} but the backup was made with "
                           f"{backup.settings['identity']!r}; nothing was changed")
    if settings.offline_master_key:
        _require_same_master(settings, backup, source, environ)
    held, other = _held(settings, backup, torkeys.KEYS_DIRECTORY, IDENTITY_FILES)
    if other:
        raise PyinfraError(
            f"{source}: the relay already holds another identity ({', '.join(other)} in "
            f"{settings.jail_root}{torkeys.KEYS_DIRECTORY} differ from the backup's); nothing was changed. An "
            "identity is never overwritten: to give this relay the backup's, move its keys directory away by hand")
    if all(held.get(name) == digest for name, digest in backup.digests().items() if name in IDENTITY_FILES):
        host.noop(f"{settings.jail_name} already holds the identity of the backup of {backup.made} "
                  f"(fingerprint {backup.fingerprint})")
        return None
    names = sorted(backup.keys, key=lambda name: (name not in IDENTITY_FILES, name))
    if settings.offline_master_key:
        names = [name for name in names if name not in OFFLINE_FILES]
    return backup, tuple(names)


def _held(jail, backup, directory, names):
    """(sha256 of each of the identity files `names` the jail holds in directory, those that are not the
    backup's): read on the server, no key leaves it."""
    running = jail.jail_name in readings.fact(Jails)
    held = readings.fact(KeyDigests, jail_name=jail.jail_name, root=jail.jail_root, running=running,
                         directory=directory, names=names)
    wanted = backup.digests()
    return held, [name for name, digest in sorted(held.items()) if wanted.get(name) != digest]


def _check_onion(service, backup, source):
    """An onion service's keys go into a HiddenServiceDir that holds none, or the same: tor makes new keys (a new
    address) at its first start without them, and those are never overwritten either."""
    held, other = _held(service, backup, torkeys.ONION_DIRECTORY, ONION_IDENTITY_FILES)
    if other:
        raise PyinfraError(
            f"{source}: the onion service already holds other keys ({', '.join(other)} in "
            f"{service.jail_root}{torkeys.ONION_DIRECTORY} differ from the backup's); nothing was changed. Its "
            f"keys are its address and are never overwritten: to give {service.jail_name} the backup's "
            f"({backup.onion_address}), move that directory away by hand")
    if held and all(held.get(name) == backup.digests().get(name) for name in ONION_IDENTITY_FILES):
        host.noop(f"{service.jail_name} already holds the keys of the backup of {backup.made} "
                  f"({backup.onion_address})")
        return None
    names = sorted(backup.keys, key=lambda name: (name not in ONION_IDENTITY_FILES, name))
    return backup, tuple(names)


def _require_same_master(settings, backup, source, environ):
    """An offline-master relay's new signing key comes from the master key in secrets_dir: it must be the one
    the backup's relay was certified by, or the relay would come back as another ed25519 identity."""
    if not identity.has_master(settings):
        raise PyinfraError(f"{source}: setting 'identity' is 'offline-master' but secrets_dir has no master key for "
                           f"{settings.host_name} ({identity.relay_dir(settings)}); nothing was changed")
    age = identity.age_identity(settings.host_name, environ)
    kept = identity.relay_dir(settings) / f"{identity.MASTER_PUBLIC}.age"
    try:
        public = pyrage.decrypt(kept.read_bytes(), [age])
    except (OSError, pyrage.DecryptError):
        raise PyinfraError(f"{source}: {kept} does not open with this age identity; nothing was changed") from None
    if backup.keys.get(identity.MASTER_PUBLIC) != public:
        raise PyinfraError(f"{source}: the backup's {identity.MASTER_PUBLIC} is not the master key kept in "
                           f"{identity.relay_dir(settings)}; nothing was changed")


def placed(jail, running):
    """Plan placing the backup's key files before the jail's tor first starts; True when it will."""
    restore = planned(jail)
    if restore is None:
        return False
    backup, names = restore
    relay = jail.kind == "relay"
    where = "tor's keys directory" if relay else "the onion service's HiddenServiceDir"
    torkeys.installed(name=f"Key files of the backup of {backup.made} in {where}",
                      jail_name=jail.jail_name, root=jail.jail_root, running=running,
                      source=KeySource(f"key files of the backup of {backup.made}", lambda: backup.keys),
                      names=names, never_replace=IDENTITY_FILES if relay else ONION_IDENTITY_FILES,
                      directory=torkeys.KEYS_DIRECTORY if relay else torkeys.ONION_DIRECTORY)
    return True
