"""The vault: the jail root on the GELI-encrypted md(4) image, with the configured cipher, key length and sector
size, and the image complete (not left half-made by an interrupted first deploy)."""

import pytest

from torjail.freebsd.geli import GeliProviders
from torjail.procedures.image import marker_path, record_path
from torjail.freebsd.md import MdDevices
from torjail.freebsd.mount import MountPoints

# geli list's name for each property -> (key of the parsed provider, the setting it must equal)
GELI_PROPERTIES = {
    "State": ("state", None),
    "EncryptionAlgorithm": ("cipher", "geli_cipher"),
    "KeyLength": ("key_length", "geli_key_length"),
    "Sectorsize": ("sector_size", "geli_sector_size"),
}


def test_image_attached_as_md_unit(host, settings):
    """The jail root must come from the configured image file, through the configured md unit."""
    units = MdDevices().process(host.check_output("mdconfig -l -v").splitlines())
    assert settings.md_device in units, f"{settings.md_device} is not configured (units: {sorted(units)})"
    unit = units[settings.md_device]
    assert (unit["type"], unit["file"]) == ("vnode", settings.image_path)


@pytest.mark.parametrize("geli_property", GELI_PROPERTIES)
def test_geli_provider(host, settings, geli_property):
    """A provider that is not attached, or weaker than configured (cipher, key length), protects less than promised."""
    providers = GeliProviders().process(host.run("geli list").stdout.splitlines())
    assert settings.eli_device in providers, f"GELI provider {settings.eli_device} is not attached"
    provider = providers[settings.eli_device]
    key, setting = GELI_PROPERTIES[geli_property]
    wanted = "ACTIVE" if setting is None else getattr(settings, setting)
    found = provider[key]
    if isinstance(wanted, str):
        found, wanted = str(found).upper(), wanted.upper()
    assert found == wanted, f"{settings.eli_device} {geli_property}: {found}, wanted {wanted}"
    assert provider["consumer"] == settings.md_device, f"{settings.eli_device} sits on {provider['consumer']}"


def test_jail_root_mounted_from_encrypted_device(host, settings):
    """A jail root on anything but the .eli device puts the relay's keys and state on the unencrypted disk."""
    mounts = MountPoints().process(host.check_output("mount -p").splitlines())
    assert settings.jail_root in mounts, f"nothing is mounted on {settings.jail_root}"
    mount = mounts[settings.jail_root]
    assert (mount["device"], mount["type"]) == (f"/dev/{settings.eli_device}", "ufs")


def test_image_complete(host, settings):
    """An image still marked incomplete may be thrown away and remade by the next deploy."""
    assert not host.file(marker_path(settings.image_path)).exists


def test_image_recorded(host, settings):
    """Without the record, a deploy that one day finds no image at image_path could take the host for a fresh one
    (the jail's configuration aside) and make a new, empty vault."""
    assert host.file(record_path(settings.image_path)).is_file, f"{record_path(settings.image_path)} is missing"
