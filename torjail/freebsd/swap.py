"""Swap devices (swapon(8), swapctl(8)): which are active, and turning one on or off.

Swap holds pages of memory, keys included, so it is GELI-encrypted with a one-time key (a `.eli`
device in /etc/fstab). `swapon -a` does that itself at boot from the fstab options; turning on a
single device by name would ignore those options (swapon then uses geli's built-in defaults), so
`enabled` runs the same `geli onetime` swapon would run from fstab, then swapon.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import FactBase, OperationValueError, QuoteString, StringCommand, operation

from .geli import GeliProviders
from . import readings

# swapon(8) uses the page size when fstab names no sectorsize; 4096 on amd64 and arm64.
DEFAULT_SECTOR_SIZE = 4096
_IGNORED_OPTIONS = {"sw", "late", "noauto", "trimonce"}


def _device_path(device: str) -> str:
    if not device or any(c.isspace() for c in device):
        raise OperationValueError(f"not a swap device: {device!r}")
    return device if device.startswith("/dev/") else f"/dev/{device}"


def onetime_arguments(options: str) -> list:
    """geli onetime flags for fstab swap options, as swapon(8) builds them (sw,ealgo=...,keylen=...)."""
    flags: dict[str, str] = {}
    no_trim = False
    for option in filter(None, options.split(",")):
        key, sep, setting = option.partition("=")
        if sep and key in ("aalgo", "ealgo", "keylen", "sectorsize"):
            flags[key] = setting
        elif option == "notrim":
            no_trim = True
        elif option not in _IGNORED_OPTIONS:
            raise OperationValueError(f"swap option not understood for a .eli device: {option!r}")
    for key in ("keylen", "sectorsize"):
        if key in flags and not flags[key].isdigit():
            raise OperationValueError(f"swap option {key} must be a number, not {flags[key]!r}")

    args: list = ["-d"]
    if "aalgo" in flags:
        args.extend(["-a", QuoteString(flags["aalgo"])])
    if "ealgo" in flags:
        args.extend(["-e", QuoteString(flags["ealgo"])])
    if "keylen" in flags:
        args.extend(["-l", flags["keylen"]])
    if no_trim:
        args.append("-T")
    args.extend(["-s", flags.get("sectorsize", str(DEFAULT_SECTOR_SIZE))])
    return args


class SwapDevices(FactBase):
    """
    Returns the active swap devices, from ``swapctl -l``.

    .. code:: python

        [{"device": "/dev/ada0p3.eli", "blocks": 2097152, "used": 0}]

    ``blocks`` and ``used`` are in the header's block size (1024 bytes by default).
    """

    def command(self) -> str:
        return "swapctl -l"

    def requires_command(self) -> str:
        return "swapctl"

    @staticmethod
    def default() -> list:
        return []

    def process(self, output: list[str]) -> list:
        devices = []
        for line in output:
            fields = line.split()
            if len(fields) < 3 or fields[0].startswith(("Device", "Total")):
                continue
            devices.append({"device": fields[0], "blocks": int(fields[1]), "used": int(fields[2])})
        return devices

    @staticmethod
    def reading_scopes():
        return [("swap",)]


def _touches(device, enabled, options):
    """The swap devices, and GELI providers: `geli onetime` attaches one (loading geom_eli if needed), and a
    one-time provider detaches by itself once swapoff lets it go. Turning a plain device off changes only the
    swap devices, whose reading device() updates as it plans."""
    if not enabled and not _device_path(device).endswith(".eli"):
        return readings.touches(("swap",), vouched=[(SwapDevices, {})])
    return readings.touches(("swap",), ("geli",), ("kld",))


@readings.scoped(_touches)
@operation()
def device(device: str, enabled: bool = True, options: str = "sw"):
    """
    Turn swapping on or off for one device; a ``.eli`` device first gets its GELI one-time key.

    + device: swap device, e.g. ``/dev/ada0p3.eli`` or ``ada0p3``
    + enabled: ``False`` turns swapping off (a one-time ``.eli`` provider then detaches by itself); swapoff
      fails when the pages in use do not fit in free memory, so check SwapDevices' ``used`` against free
      memory before asking for this on a busy server
    + options: the device's fstab options (``sw,ealgo=AES-XTS,keylen=256,sectorsize=4096``);
      for a ``.eli`` device they become the ``geli onetime`` flags, as swapon(8) does for ``-a``

    **Example:**

    .. code:: python

        swap.device("/dev/ada0p3.eli", options="sw,ealgo=AES-XTS,keylen=256,sectorsize=4096")
    """
    path = _device_path(device)
    active = readings.fact(SwapDevices)
    is_on = any(each["device"] == path for each in active)
    if enabled == is_on:
        host.noop(f"swap on {path} is already {'on' if enabled else 'off'}")
        return
    if not enabled:
        active[:] = [each for each in active if each["device"] != path]
        yield StringCommand("swapoff", QuoteString(path))
        return

    if path.endswith(".eli"):
        provider = path[len("/dev/") :]
        if provider not in readings.fact(GeliProviders):
            base = path[: -len(".eli")]
            yield StringCommand("geli", "onetime", *onetime_arguments(options), QuoteString(base))
    yield StringCommand("swapon", QuoteString(path))
