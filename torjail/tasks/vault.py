"""The vault: the jail's root filesystem on a GELI-encrypted md(4) image, made once and never made again.

Facts decide before anything changes: an image that exists is never re-initialised or reformatted; an image that
exists but carries no GELI metadata stops the deploy; a locked image stops it and sends the operator to unlock.py.
Only an absent image, or a half-made one whose marker says it never held data, is (re)created.
"""

import weakref

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError
from pyinfra.context import ctx_host
from pyinfra.facts.files import File
from pyinfra.operations import files

from torjail.freebsd import image, mount
from torjail.freebsd.geli import GeliImage, GeliProviders
from torjail.secrets import geli_passphrase


class VaultError(PyinfraError):
    """The image is in a state the deploy must not touch; the message tells the operator what to do."""


class VaultLocked(VaultError):
    """The image carries GELI metadata but its provider is not attached: unlock.py first."""


# The deploy asks for the state twice while planning (preflight, then apply), and nothing changes the server
# while planning: one reading per host serves both.
_states: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def state(settings):
    """'create' (absent or half-made) or 'unlocked'; raises VaultLocked, or VaultError for an image it cannot
    identify. Read once per host while planning."""
    per_host = _states.setdefault(ctx_host.get(), {})
    key = (settings.image_path, settings.eli_device)
    if key not in per_host:
        per_host[key] = _read_state(settings)
    return per_host[key]


def _read_state(settings):
    if host.get_fact(File, path=image.marker_path(settings.image_path)):
        return "create"
    found = host.get_fact(GeliImage, path=settings.image_path)
    if found["state"] == "absent":
        return "create"
    if found["state"] != "geli":
        raise VaultError(
            f"{host.name}: {settings.image_path} exists but carries no GELI metadata: torjail cannot identify it "
            "and will not touch it. Move it away or set image_path to another file.")
    if settings.eli_device in host.get_fact(GeliProviders):
        return "unlocked"
    raise VaultLocked(f"{host.name}: {settings.image_path} is locked (GELI provider {settings.eli_device} not "
                     "attached): run `pyinfra inventory.py unlock.py` first, then deploy again")


def apply(settings):
    current = state(settings)
    if current == "create":
        _create(settings)
    files.directory(name=f"Mount point {settings.jail_root}", path=settings.jail_root, mode="755")
    mount.mounted(name=f"Jail root {settings.eli_device} on {settings.jail_root}",
                  device=f"/dev/{settings.eli_device}", path=settings.jail_root)
    return current


def _create(settings):
    passphrase = geli_passphrase(settings)
    image.incomplete_discarded(name="Discard a half-made image", image=settings.image_path, unit=settings.md_unit,
                               mountpoint=settings.jail_root)
    image.created(name=f"Image {settings.image_path} ({settings.image_size})", image=settings.image_path,
                  size=settings.image_size)
    image.encrypted(name=f"GELI on {settings.md_device} ({settings.eli_device} attached)",
                    image=settings.image_path, unit=settings.md_unit, passphrase=passphrase,
                    cipher=settings.geli_cipher, key_length=settings.geli_key_length,
                    sector_size=settings.geli_sector_size)
    image.filesystem_made(name=f"UFS on {settings.eli_device}", image=settings.image_path,
                          provider=settings.eli_device)
