"""The relay's offline identity on the server: no master secret key may be there, and the relay holds the
signing key, its certificate and the master public key made on the operator's machine (torjail.identity).

A master secret key found in the keys directory of an offline-master relay stops every deploy and renewal before
any change: either the relay was set up on-relay, or someone put it there, and in both cases the operator has to
decide (move the relay to a new identity, or set identity to on-relay), not the deploy.
"""

import os
import time

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError

from torjail import identity
from torjail.procedures import torkeys
from torjail.procedures.torkeys import KEYS_DIRECTORY, KeyFiles, KeySource, SigningCertExpiry
from torjail.render import jail_path
from torjail.freebsd import readings

MASTER_SECRET_FILES = (identity.MASTER_SECRET, identity.MASTER_SECRET + "_encrypted")
RENEW_ENV = "TORJAIL_RENEW_KEYS"  # "always": renew whatever the certificate's expiry


def keys_directory(settings):
    return jail_path(settings, KEYS_DIRECTORY)


def require_no_master_key(settings):
    """Stop before any change when an offline-master relay holds its master secret key."""
    if not settings.offline_master_key:
        return
    present = readings.fact(KeyFiles, path=keys_directory(settings))
    found = [f"{keys_directory(settings)}/{name}" for name in MASTER_SECRET_FILES if name in present]
    if found:
        raise PyinfraError(
            f"{host.name}: setting 'identity' is 'offline-master' but the relay holds its master secret key: "
            f"{', '.join(found)}; nothing was changed. Whoever has that file is this relay for good: move the "
            "relay to a new identity, or set identity to 'on-relay'")


def placed(settings, running):
    """Give an offline-master relay its signing key and certificate when it has none yet; True when it will."""
    if not settings.offline_master_key:
        return False
    if identity.SIGNING_CERT in readings.fact(KeyFiles, path=keys_directory(settings)):
        host.noop(f"{settings.jail_name} already holds a signing certificate (renew_keys.py renews it)")
        return False
    install(settings, running, lambda: identity.relay_keys(settings))
    return True


def install(settings, running, make):
    """Plan placing the relay's key files; a master key that will need the age identity needs it now."""
    if identity.has_master(settings):
        identity.age_identity(settings.host_name)
    torkeys.installed(name="Offline-made signing key and certificate in tor's keys directory",
                      jail_name=settings.jail_name, root=settings.jail_root, running=running,
                      source=KeySource("offline signing key and certificate", make), names=identity.RELAY_FILES)


def renewal_due(settings, environ=None, now=None):
    """(due, why): renew when asked (TORJAIL_RENEW_KEYS=always), when there is no certificate, or when less than
    half of signing_key_lifetime_days is left before it expires."""
    environ = os.environ if environ is None else environ
    if environ.get(RENEW_ENV) == "always":
        return True, f"{RENEW_ENV}=always"
    expiry = readings.fact(SigningCertExpiry, path=f"{keys_directory(settings)}/{identity.SIGNING_CERT}")
    if expiry is None:
        return True, "the relay has no signing certificate"
    left = expiry - (time.time() if now is None else now)
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expiry))
    if left < settings.signing_key_lifetime_days * 86400 / 2:
        return True, f"the signing certificate expires {until}"
    return False, f"the signing certificate is valid until {until}"
