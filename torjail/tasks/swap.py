"""Swap through GELI one-time encryption only, and nothing after it while plain swap is still active.

Swap holds pages of memory, keys included; a one-time key per boot makes them unreadable after power-off.
Every swap entry of /etc/fstab becomes its `.eli` twin. The switch happens live when free memory can take
what is swapped out; otherwise fstab is written and the deploy stops before the vault: the vault's keys and
tor must never sit in memory that may be written to disk in the clear. After a reboot the next deploy goes on.

A swap file cannot be an fstab entry: swapon(8) takes every name that begins with md and a digit for a swap
file of its own and swaps on the plain md unit, and refuses `md99.eli`. The file gets an rc.d script instead
(files/torjail_swapfile) that attaches it, gives it a one-time key and swaps on the `.eli` provider at boot,
and that the deploy starts now.
"""

from pathlib import Path

from pyinfra import host, logger
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from torjail.freebsd import rc, swap
from torjail.freebsd.fstab import FstabEntries
from torjail.freebsd.swap import SwapDevices
from torjail.freebsd.sysctl import Sysctls
from torjail.settings import parse_size
from torjail.freebsd import readings

SWAP_FILE = "/usr/swap0"
SWAP_FILE_UNIT = 99
SWAP_FILE_SCRIPT = "/usr/local/etc/rc.d/torjail_swapfile"
SCRIPT_SOURCE = Path(__file__).resolve().parents[2] / "files" / "torjail_swapfile"
MEMORY_SYSCTLS = ["hw.pagesize", "vm.stats.vm.v_free_count", "vm.stats.vm.v_inactive_count"]


def eli_options(settings):
    """fstab options of an encrypted swap entry, as swapon(8) reads them."""
    return (f"sw,ealgo={settings.geli_cipher},keylen={settings.geli_key_length},"
            f"sectorsize={settings.geli_sector_size}")


def geli_flags(settings):
    """The same choice as `geli onetime` flags, for the swap file's rc.d script."""
    return f"-e {settings.geli_cipher} -l {settings.geli_key_length} -s {settings.geli_sector_size}"


def _fstab_line(device, options):
    return f"{device}\tnone\tswap\t{options}\t0\t0"


def _written(entries, encrypted, options):
    """Whether fstab's one entry for the encrypted device is the line the deploy writes (read from the fstab
    already read, so that a converged server is not asked again)."""
    found = [entry for entry in entries if entry["device"] == encrypted]
    wanted = {"device": encrypted, "mountpoint": "none", "fstype": "swap", "options": options, "dump": 0, "pass": 0}
    return found == [wanted]


def _device_pattern(device):
    return "^" + device.replace(".", "\\.") + "[[:space:]]"


def _spare_bytes():
    """Free plus inactive memory: what can take pages back from a swap device that goes off."""
    values = readings.fact(Sysctls, names=MEMORY_SYSCTLS)
    try:
        page = int(values["hw.pagesize"])
        return (int(values["vm.stats.vm.v_free_count"]) + int(values["vm.stats.vm.v_inactive_count"])) * page
    except (KeyError, TypeError, ValueError):
        return 0


def _wanted_devices(settings, entries):
    swap_entries = [entry for entry in entries if entry["fstype"] == "swap"]
    if settings.swap_devices == "detect":
        return [entry["device"].removesuffix(".eli") for entry in swap_entries]
    return list(settings.swap_devices)


def _refuse_plain_swap_files(entries):
    """An fstab swap file (`md99 none swap sw,file=/usr/swap0`) swaps in the clear at every boot, and fstab has
    no encrypted form of it: nothing torjail writes to fstab can fix it, and a reboot brings it back. Stop before
    any change and say how to replace it."""
    files_in_clear = [entry for entry in entries if entry["fstype"] == "swap" and "file=" in entry["options"]]
    if files_in_clear:
        entry = files_in_clear[0]
        path = next(option[5:] for option in entry["options"].split(",") if option.startswith("file="))
        unit = entry["device"].removeprefix("/dev/").removeprefix("md")
        raise PyinfraError(
            f"{host.name}: /etc/fstab swaps on the file {path} through {entry['device']} in the clear, and fstab "
            "cannot encrypt a swap file; nothing was changed. Turn it off (swapoff /dev/md{0} && mdconfig -d -u "
            "{0}), remove its fstab line and the file, set swap_file_size to get an encrypted swap file, then "
            "deploy again".format(unit))


def apply(settings):
    """Encrypted swap now or from the next boot. Returns False when plain swap stays active after this run:
    an operation that fails then stops the deploy, and nothing after swap is planned."""
    entries = readings.fact(FstabEntries)
    _refuse_plain_swap_files(entries)
    active = {device["device"]: device for device in readings.fact(SwapDevices)}
    devices = _wanted_devices(settings, entries)
    options = eli_options(settings)
    spare = None
    moved = set()
    for device in devices:
        encrypted = device + ".eli"
        plain_entry = any(entry["device"] == device for entry in entries)
        if not plain_entry and _written(entries, encrypted, options):
            host.noop(f"/etc/fstab already swaps on {encrypted} with {options}")
        else:
            files.line(
                name=f"Swap on {device} through GELI one-time encryption (fstab)",
                path="/etc/fstab",
                line=_device_pattern(device) if plain_entry else _device_pattern(encrypted),
                replace=_fstab_line(encrypted, options),
            )
        if device in active:
            # every device switched live gives its pages back to memory: the next one must fit in what is left
            spare = _spare_bytes() if spare is None else spare
            needed = active[device]["used"] * 1024 * 1.5
            if spare > needed:
                spare -= needed
                moved.add(device)
                swap.device(name=f"Swap off on plain {device}", device=device, enabled=False)
                swap.device(name=f"Swap on {encrypted}", device=encrypted, options=options)
            else:
                logger.warning(f"{host.name}: not enough free memory to move swap off {device} now: "
                               f"{encrypted} takes over at the next boot")
        elif encrypted not in active:
            swap.device(name=f"Swap on {encrypted}", device=encrypted, options=options)
    if not devices and settings.swap_file_size:
        _swap_file(settings, active)
    plain = [device for device in active if not device.endswith(".eli") and device not in moved]
    if plain:
        _stop(plain)
        return False
    return True


def _stop(plain):
    """Fail here, after fstab is written: the vault and tor wait for a boot that brings up encrypted swap only."""
    message = f"plain swap on {', '.join(plain)} is still active: reboot, then deploy again"
    logger.warning(f"{host.name}: {message}; the vault, the jail and tor are left for that deploy")
    server.shell(
        name="Stop: plain swap is still active",
        commands=[f"echo 'torjail: {message}' >&2; exit 1"],
    )


def _swap_file(settings, active):
    """An encrypted swap file for a server without swap, when the settings ask for one."""
    device = f"md{SWAP_FILE_UNIT}"
    files.line(
        name=f"No fstab entry for {device}.eli (swapon(8) refuses it)",
        path="/etc/fstab",
        line=_device_pattern(f"{device}.eli"),
        present=False,
    )
    if not readings.fact(File, path=SWAP_FILE):
        megabytes = parse_size(settings.swap_file_size) // 2**20
        partial = f"{SWAP_FILE}.torjail-new"
        # written in full (a sparse file would fail once the disk fills), readable by root only from the start
        server.shell(
            name=f"Swap file {SWAP_FILE} ({settings.swap_file_size})",
            commands=[f"if [ -e {SWAP_FILE} ]; then echo '{SWAP_FILE} exists: not creating it again' >&2; exit 1; "
                      f"fi; rm -f {partial} && (umask 077 && dd if=/dev/zero of={partial} bs=1048576 "
                      f"count={megabytes} 2>/dev/null) && mv {partial} {SWAP_FILE}"],
        )
    files.put(
        name=f"rc.d script for swap on {SWAP_FILE} through {device}.eli",
        src=str(SCRIPT_SOURCE),
        dest=SWAP_FILE_SCRIPT,
        mode="555",
    )
    rc.values(name="rc.conf torjail_swapfile_*",
              assignments={"torjail_swapfile_enable": "YES", "torjail_swapfile_path": SWAP_FILE,
                           "torjail_swapfile_unit": str(SWAP_FILE_UNIT),
                           "torjail_swapfile_geli_flags": geli_flags(settings)})
    if f"/dev/{device}.eli" not in active:
        server.shell(name=f"Swap on /dev/{device}.eli", commands=["service torjail_swapfile start"])
