"""Memory disks (md(4)) backed by image files, through mdconfig(8).

The encrypted jail root is a file attached as a vnode md unit; GELI then sits on that unit.
"""

from __future__ import annotations

import re

from pyinfra import host
from pyinfra.api import FactBase, OperationError, OperationValueError, QuoteString, StringCommand, operation
from . import readings

_UNIT = re.compile(r"^(?:/dev/)?md(\d+)$")


def unit_number(unit: str | int) -> int:
    """Return the number of an md unit given as 3, "md3" or "/dev/md3"."""
    if isinstance(unit, int) and not isinstance(unit, bool) and unit >= 0:
        return unit
    match = _UNIT.match(str(unit))
    if not match:
        raise OperationValueError(f"not an md unit: {unit!r} (expected e.g. 0, 'md0' or '/dev/md0')")
    return int(match.group(1))


class MdDevices(FactBase):
    """
    Returns the configured md units, from ``mdconfig -l -v``.

    .. code:: python

        {"md0": {"type": "vnode", "size": "2048M", "file": "/var/jails/tor.img"}}

    ``file`` is None for units that are not vnode-backed.
    """

    def command(self) -> str:
        return "mdconfig -l -v"

    def requires_command(self) -> str:
        return "mdconfig"

    @staticmethod
    def default() -> dict:
        return {}

    def process(self, output: list[str]) -> dict:
        devices = {}
        for line in output:
            if not line.strip():
                continue
            # name, type, size, file, label: tab-separated (the label is usually empty)
            fields = line.split("\t") if "\t" in line else line.split()
            fields = [field.strip() for field in fields]
            name, kind = fields[0], fields[1] if len(fields) > 1 else ""
            size = fields[2] if len(fields) > 2 else ""
            backing = fields[3] if len(fields) > 3 else ""
            devices[name] = {
                "type": kind,
                "size": size,
                "file": backing if kind == "vnode" and backing not in ("", "-") else None,
            }
        return devices


@operation()
def device(unit: str | int, image: str | None = None, present: bool = True):
    """
    Attach an image file as a vnode md unit, or detach the unit.

    + unit: md unit (``0``, ``"md0"`` or ``"/dev/md0"``)
    + image: absolute path of the image file (needed when ``present``)
    + present: ``False`` detaches the unit; mdconfig refuses while it is open (a GELI provider or
      a mount on it): detach those first

    The unit backing that very file is left alone; a unit backing another file, or the file
    already backed by another unit, is an error (never a second unit on the same image).

    **Example:**

    .. code:: python

        md.device(0, image="/var/jails/tor.img")
    """
    number = unit_number(unit)
    name = f"md{number}"
    devices = readings.fact(MdDevices)

    if not present:
        if name not in devices:
            host.noop(f"{name} is already detached")
            return
        yield StringCommand("mdconfig", "-d", "-u", str(number))
        return

    if image is None:
        raise OperationValueError(f"{name}: attaching a unit needs the image file")
    current = devices.get(name)
    if current is not None:
        if current["file"] == image:
            host.noop(f"{name} is already attached to {image}")
            return
        raise OperationError(f"{name} is in use for {current['file'] or current['type']}, not {image}")

    for other, found in devices.items():
        if found["file"] == image:
            raise OperationError(f"{image} is already attached as {other}, not {name}")

    yield StringCommand("mdconfig", "-a", "-t", "vnode", "-f", QuoteString(image), "-u", str(number))
