"""Swap only through GELI one-time encryption, with the configured cipher.

Swap holds pages of memory, keys included; with a one-time key per boot they are unreadable after power-off.
The swap devices checked are the configured ones plus every swap entry of the server's /etc/fstab (read when the
checks are collected, so each device is a test item of its own).
"""


import pytest
from host_checks import parse_options, remote_host, server_for_run, settings_for_run
from torjail.freebsd.fstab import FstabEntries
from torjail.freebsd.geli import GeliProviders
from torjail.freebsd.swap import SwapDevices
from torjail.tasks import swap


def device_path(device):
    """/dev/NAME for a device given as NAME or /dev/NAME."""
    return device if device.startswith("/dev/") else f"/dev/{device}"


def fstab_swap_entries(host):
    return [entry for entry in FstabEntries().process(host.file("/etc/fstab").content_string.splitlines())
            if entry["fstype"] == "swap"]


def swap_devices(config):
    """The plain devices (without .eli) that must swap encrypted: configured ones and those fstab swaps on."""
    settings = server_for_run(config) if settings_for_run(config) is not None else None
    if settings is None:
        return []
    devices = [] if settings.swap_devices == "detect" else [device_path(d) for d in settings.swap_devices]
    for entry in fstab_swap_entries(remote_host(config)):
        plain = device_path(entry["device"]).removesuffix(".eli")
        if plain not in devices:
            devices.append(plain)
    return devices


def pytest_generate_tests(metafunc):
    if "swap_device" in metafunc.fixturenames:
        metafunc.parametrize("swap_device", swap_devices(metafunc.config))


def test_swap_at_boot_encrypted(host, settings, swap_device):
    """A plain fstab swap entry writes memory unencrypted to disk from the next boot on."""
    entries = {device_path(entry["device"]): entry for entry in fstab_swap_entries(host)}
    assert swap_device not in entries, f"/etc/fstab swaps on {swap_device} unencrypted"
    entry = entries.get(swap_device + ".eli")
    assert entry is not None, f"/etc/fstab has no swap entry for {swap_device}.eli"
    options = parse_options(entry["options"])
    wanted = {"ealgo": settings.geli_cipher, "keylen": str(settings.geli_key_length),
              "sectorsize": str(settings.geli_sector_size)}
    found = {name: options.get(name) for name in wanted}
    assert {k: (v or "").upper() for k, v in found.items()} == {k: v.upper() for k, v in wanted.items()}, \
        f"{swap_device}.eli options {entry['options']!r}"


def test_only_encrypted_swap_active(host):
    """Any active swap device without .eli is writing memory to disk in the clear right now."""
    active = [device["device"] for device in SwapDevices().process(host.check_output("swapctl -l").splitlines())]
    plain = [device for device in active if not device.endswith(".eli")]
    assert not plain, f"unencrypted swap active: {plain} (all active: {active})"


def test_swap_provider_one_time(host, settings, swap_device):
    """Swap encrypted with a lasting key, or a weaker cipher than configured, can be read after a seizure."""
    provider = swap_device.removeprefix("/dev/") + ".eli"
    providers = GeliProviders().process(host.run("geli list").stdout.splitlines())
    assert provider in providers, f"no GELI provider {provider} (attached: {sorted(providers)})"
    found = providers[provider]
    assert found["onetime"], f"{provider} flags {found['flags']}: not a one-time key"
    assert (found["cipher"] or "").upper() == settings.geli_cipher.upper()
    assert found["key_length"] == settings.geli_key_length
    assert found["sector_size"] == settings.geli_sector_size


def test_swap_file_on_through_a_one_time_key_and_at_boot(host, server_settings):
    """A swap file is encrypted only by its rc.d script (fstab cannot say it): the script must be enabled for the
    next boot, and md99.eli, backed by the file, must be swapping now with the configured cipher."""
    if not server_settings.swap_file_size or fstab_swap_entries(host) \
            or server_settings.swap_devices not in ("detect", []):
        pytest.skip("no swap file: the server swaps on devices of its own")
    unit = f"md{swap.SWAP_FILE_UNIT}"
    assert host.file(swap.SWAP_FILE).mode == 0o600, f"{swap.SWAP_FILE} is readable by others than root"
    assert host.run(f"mdconfig -l -f {swap.SWAP_FILE} -u {unit}").rc == 0, f"{unit} is not backed by {swap.SWAP_FILE}"
    assert host.run("service torjail_swapfile enabled").rc == 0, "the swap file's rc.d script is not enabled"
    active = [device["device"] for device in SwapDevices().process(host.check_output("swapctl -l").splitlines())]
    assert f"/dev/{unit}.eli" in active, f"no swap on /dev/{unit}.eli (active: {active})"
    found = GeliProviders().process(host.run("geli list").stdout.splitlines()).get(f"{unit}.eli", {})
    assert found.get("onetime"), f"{unit}.eli flags {found.get('flags')}: not a one-time key"
    assert ((found.get("cipher") or "").upper(), found.get("key_length"), found.get("sector_size")) == (
        server_settings.geli_cipher.upper(), server_settings.geli_key_length, server_settings.geli_sector_size)
