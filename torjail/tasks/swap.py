"""Swap through GELI one-time encryption only: every swap entry of /etc/fstab becomes its `.eli` twin.

Swap holds pages of memory, keys included; a one-time key per boot makes them unreadable after power-off.
The switch happens live when free memory can take what is swapped out, otherwise at the next boot, and the
deploy says which.
"""

from pyinfra import host, logger
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from torjail.freebsd import swap
from torjail.freebsd.fstab import FstabEntries
from torjail.freebsd.swap import SwapDevices
from torjail.freebsd.sysctl import Sysctls
from torjail.settings import parse_size

SWAP_FILE = "/usr/swap0"
SWAP_FILE_UNIT = 99
MEMORY_SYSCTLS = ["hw.pagesize", "vm.stats.vm.v_free_count", "vm.stats.vm.v_inactive_count"]


def eli_options(settings, extra=""):
    """fstab options of an encrypted swap entry, as swapon(8) reads them."""
    return (f"sw{extra},ealgo={settings.geli_cipher},keylen={settings.geli_key_length},"
            f"sectorsize={settings.geli_sector_size}")


def _fstab_line(device, options):
    return f"{device}\tnone\tswap\t{options}\t0\t0"


def _device_pattern(device):
    return "^" + device.replace(".", "\\.") + "[[:space:]]"


def _memory_to_spare(used_kib):
    """Whether free plus inactive memory can take `used_kib` of swapped-out pages, with half again to spare."""
    values = host.get_fact(Sysctls, names=MEMORY_SYSCTLS)
    try:
        page = int(values["hw.pagesize"])
        spare = (int(values["vm.stats.vm.v_free_count"]) + int(values["vm.stats.vm.v_inactive_count"])) * page
    except (KeyError, TypeError, ValueError):
        return False
    return spare > used_kib * 1024 * 1.5


def _wanted_devices(settings, entries):
    swap_entries = [entry for entry in entries if entry["fstype"] == "swap" and "file=" not in entry["options"]]
    if settings.swap_devices == "detect":
        return [entry["device"].removesuffix(".eli") for entry in swap_entries]
    return list(settings.swap_devices)


def apply(settings):
    entries = host.get_fact(FstabEntries)
    active = {device["device"]: device for device in host.get_fact(SwapDevices)}
    devices = _wanted_devices(settings, entries)
    options = eli_options(settings)
    for device in devices:
        encrypted = device + ".eli"
        plain_entry = any(entry["device"] == device for entry in entries)
        files.line(
            name=f"Swap on {device} through GELI one-time encryption (fstab)",
            path="/etc/fstab",
            line=_device_pattern(device) if plain_entry else _device_pattern(encrypted),
            replace=_fstab_line(encrypted, options),
        )
        if device in active:
            if _memory_to_spare(active[device]["used"]):
                swap.disabled(name=f"Swap off on plain {device}", device=device)
                swap.enabled(name=f"Swap on {encrypted}", device=encrypted, options=options)
            else:
                logger.warning(f"{host.name}: not enough free memory to move swap off {device} now: "
                               f"{encrypted} takes over at the next boot")
        elif encrypted not in active:
            swap.enabled(name=f"Swap on {encrypted}", device=encrypted, options=options)
    if not devices and settings.swap_file_size:
        _swap_file(settings, active)


def _swap_file(settings, active):
    """An encrypted swap file for a server without swap, when the settings ask for one."""
    if not host.get_fact(File, path=SWAP_FILE):
        megabytes = parse_size(settings.swap_file_size) // 2**20
        server.shell(
            name=f"Swap file {SWAP_FILE} ({settings.swap_file_size})",
            commands=[f"dd if=/dev/zero of={SWAP_FILE} bs=1m count={megabytes} 2>/dev/null",
                      f"chmod 0600 {SWAP_FILE}"],
        )
    device = f"md{SWAP_FILE_UNIT}.eli"
    files.line(
        name=f"Encrypted swap file {SWAP_FILE} (fstab)",
        path="/etc/fstab",
        line=_device_pattern(device),
        replace=_fstab_line(device, eli_options(settings, f",file={SWAP_FILE},late")),
    )
    if f"/dev/{device}" not in active:
        server.shell(name=f"Swap on {device}", commands=["swapon -aL"])
