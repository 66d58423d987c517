"""The vault: the jail's root filesystem on a GELI-encrypted md(4) image, made once and never made again.

Facts decide before anything changes: an image that exists is never re-initialised or reformatted; an image that
exists but carries no GELI metadata stops the deploy; a locked image stops it and sends the operator to unlock.py.
Only an absent image on a host that never had one, or a half-made one whose marker names it, is (re)created.
Whatever says this host already has a vault (a live one under another path or md unit, the record of an image
made at the path, a marker without its image, the jail's configuration) stops the deploy rather than let it make
a new, empty vault and a new relay identity; so do GELI settings that differ from the image's own.
"""

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.files import File

from torjail.freebsd import mount
from torjail.freebsd.geli import GeliProviders
from torjail.freebsd.jail import Jails
from torjail.freebsd.md import MdDevices
from torjail.freebsd.mount import MountPoints
from torjail.freebsd.readings import read_once
from torjail.procedures import files as host_files, image
from torjail.secrets import geli_passphrase
from torjail.freebsd import readings


class VaultError(PyinfraError):
    """The image is in a state the deploy must not touch; the message tells the operator what to do."""


class VaultLocked(VaultError):
    """The image carries GELI metadata but its provider is not attached: unlock.py first."""


class VaultMissing(VaultError):
    """The host had a vault, but there is no image at image_path."""


class VaultNoRoom(VaultError):
    """An image is to be made, but its directory has less than image_size free."""


# geli list's name of each GELI setting, and the key of the parsed provider holding it.
GELI_SETTINGS = {"geli_cipher": "cipher", "geli_key_length": "key_length", "geli_sector_size": "sector_size"}

def state(settings):
    """'create' (absent on a host that never had a vault, or half-made) or 'unlocked'; raises VaultLocked,
    VaultMissing, VaultNoRoom (an image to make that would not fit), or VaultError for an image it cannot
    identify or must not replace. Read once per host while planning."""
    return _reading(settings)[0]


def _reading(settings):
    """The state and the ImageFiles fact it was read from, once per host and image: the deploy asks for the state
    twice while planning (preflight, then apply)."""

    def read():
        found = readings.fact(image.ImageFiles, path=settings.image_path)
        return _read_state(settings, found), found

    return read_once((image.ImageFiles, settings.image_path, settings.eli_device), read)


def _read_state(settings, found):
    held = found["image"]
    if held["state"] == "absent":
        _refuse_a_second_vault(settings, found)
        _require_space(settings, found)
        return "create"
    if found["marker"] is not None:
        _require_half_made(settings, found)
        _require_own_unit(settings, held)
        _require_unit_free(settings)
        _require_space(settings, found)
        return "create"
    if held["state"] != "geli":
        raise VaultError(
            f"{host.name}: {settings.image_path} exists but carries no GELI metadata: torjail cannot identify it "
            "and will not touch it. Move it away or set image_path to another file.")
    _require_own_unit(settings, held)
    providers = readings.fact(GeliProviders)
    if settings.eli_device not in providers:
        _require_unit_free(settings)
        raise VaultLocked(f"{host.name}: {settings.image_path} is locked (GELI provider {settings.eli_device} not "
                          "attached): run `pyinfra inventory.py unlock.py` first, then deploy again")
    mounted = readings.fact(MountPoints).get(settings.jail_root)
    if mounted and mounted["device"] != f"/dev/{settings.eli_device}":
        _refuse(settings, f"the jail root {settings.jail_root} is mounted from {mounted['device']}")
    _require_same_geli(settings, providers[settings.eli_device])
    return "unlocked"


def _require_own_unit(settings, held):
    """The image attached on another md unit than md_unit: a new attach would put one image on two units."""
    if held["md_unit"] not in (None, settings.md_device):
        raise VaultError(
            f"{host.name}: setting 'md_unit' is {settings.md_unit} but {settings.image_path} is attached as "
            f"{held['md_unit']}: set md_unit to {held['md_unit'].removeprefix('md')}, or stop the jail, unmount "
            f"{settings.jail_root} and detach the image (geli detach {held['md_unit']}.eli; mdconfig -d -u "
            f"{held['md_unit'].removeprefix('md')}) before changing md_unit")


def _require_unit_free(settings):
    """md_unit attached to another file: attaching or discarding through it would reach someone else's image."""
    units = readings.fact(MdDevices)
    if settings.md_device in units and units[settings.md_device]["file"] != settings.image_path:
        _refuse(settings, f"{settings.md_device} is attached to {_backing(units, settings.md_device)}")


def _refuse_a_second_vault(settings, found):
    """No image at the path: stop if this host shows a vault anywhere (live, recorded, half-made, configured)."""
    units = readings.fact(MdDevices)
    providers = readings.fact(GeliProviders)
    mounted = readings.fact(MountPoints).get(settings.jail_root)
    live = []
    if settings.md_device in units:
        live.append(f"{settings.md_device} is attached to {_backing(units, settings.md_device)}")
    if settings.eli_device in providers:
        live.append(f"{settings.eli_device} is attached")
    if mounted:
        device = mounted["device"].removeprefix("/dev/")
        unit = device.removesuffix(".eli")
        source = f" (image {units[unit]['file']})" if unit in units and units[unit]["file"] else ""
        live.append(f"the jail root {settings.jail_root} is mounted from {mounted['device']}{source}")
    if settings.jail_name in readings.fact(Jails):
        live.append(f"the jail {settings.jail_name} is running")
    if live:
        _refuse(settings, "; ".join(live))

    marker = image.marker_path(settings.image_path)
    record = image.record_path(settings.image_path)
    jail_conf = settings.jail_conf_path
    evidence = []
    if found["record"]:
        evidence.append(f"torjail's record {record} says an image was made there")
    if found["marker"] is not None:
        evidence.append(f"its marker {marker} is still there")
    if readings.fact(File, path=jail_conf):
        evidence.append(f"the jail {settings.jail_name} is configured ({jail_conf})")
    if evidence:
        leftovers = " ".join(path for path, shown in ((record, found["record"]),
                                                      (marker, found["marker"] is not None)) if shown)
        raise VaultMissing(
            f"{host.name}: the encrypted image is missing: there is no {settings.image_path} (setting "
            f"'image_path'), but {'; '.join(evidence)}. torjail will not make a new, empty vault and a new relay "
            "identity in its place. Put the image back (from a backup, or undo a move), or set image_path to "
            "where it is now. Only to start over with a new vault, with a new identity or with the keys of a "
            f"backup of this jail: delete {(leftovers + ' and ') if leftovers else ''}{jail_conf} by hand, then "
            "deploy again (with TORJAIL_RESTORE=BACKUP for the backup's keys).")


def _refuse(settings, live):
    raise VaultError(
        f"{host.name}: a vault is live on this host ({live}) and it is not the image of setting 'image_path' "
        f"({settings.image_path}, md_unit {settings.md_unit}): torjail will not tear it down and make a new, "
        f"empty one. To move an image: stop the jail (service jail stop {settings.jail_name}), unmount "
        f"{settings.jail_root} if it is still mounted, detach the image (geli detach mdN.eli; mdconfig -d -u N), "
        "mv the image file to its new path, then set image_path and run unlock.py, then deploy. Otherwise set "
        "image_path and md_unit back to the live image's.")


def _backing(units, name):
    return units[name]["file"] or f"a {units[name]['type']} disk"


def _require_half_made(settings, found):
    """A marker beside an image it does not name (a restored or migrated image at a stale marker's path)."""
    marker = image.marker_path(settings.image_path)
    if found["image"]["state"] != "absent" and found["marker"] == found["image"]["seal"]:
        return
    raise VaultError(
        f"{host.name}: {marker} says a half-made image is at {settings.image_path}, but the file there is not "
        "the one it names (its last sector differs): torjail will not remove or initialise it. If that file is "
        f"your vault, delete the stale marker {marker} by hand, then deploy again.")


def _require_space(settings, found):
    """The image is sparse: a disk that fills up later corrupts the jail, so its full size must be free now."""
    free_kb = found["free_kb"]
    if free_kb is None or free_kb * 1024 < settings.image_bytes:
        shown = "unknown (df -k printed nothing usable)" if free_kb is None else f"{free_kb} KiB"
        raise VaultNoRoom(
            f"{host.name}: setting 'image_size' is {settings.image_size} but the free space where "
            f"{settings.image_path} would go is {shown}: free some space or lower image_size")


def _require_same_geli(settings, provider):
    """GELI settings apply when an image is made; one that differs from the image would be silently ignored."""
    for setting, key in GELI_SETTINGS.items():
        wanted, found = getattr(settings, setting), provider[key]
        if str(wanted).upper() != str(found).upper():
            raise VaultError(
                f"{host.name}: setting '{setting}' is {wanted} but the image {settings.image_path} "
                f"({settings.eli_device}) was made with {found}: GELI settings take effect only when an image is "
                f"made. Set {setting} to {found}, or move the jail's data to a new image made with {wanted}.")


def apply(settings):
    current, found = _reading(settings)
    if current == "create":
        _create(settings)
    elif not found["record"]:
        # a vault made before torjail kept records, or moved here by hand: record it, so that a deploy that
        # later finds the path empty stops instead of making a new, empty vault
        image.recorded(name=f"Record of the image {settings.image_path}", image=settings.image_path)
    host_files.directory(name=f"Mount point {settings.jail_root}", path=settings.jail_root, mode="755")
    mount.mount(name=f"Jail root {settings.eli_device} on {settings.jail_root}", path=settings.jail_root,
                device=f"/dev/{settings.eli_device}", options=("nosuid",))
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
