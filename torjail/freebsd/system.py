"""What kind of FreeBSD a server runs, and its crash dump device.

A jail's userland must not be newer than the host's kernel; crash dumps would write RAM (keys included)
unencrypted to the swap partition, so they are switched off now and at boot.
"""

from __future__ import annotations

import re

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, operation
from . import readings

_RELEASE = re.compile(r"^(\d+)\.(\d+)-")


class FreeBSDVersion(FactBase):
    """
    Returns the userland version (``freebsd-version -u``) as (major, minor, text), or None elsewhere.
    """

    def command(self) -> str:
        return "freebsd-version -u 2>/dev/null || true"

    @staticmethod
    def default():
        return None

    def process(self, output: list[str]):
        match = _RELEASE.match(output[0].strip()) if output else None
        return (int(match.group(1)), int(match.group(2)), output[0].strip()) if match else None


class DumpDevice(FactBase):
    """
    Returns the configured crash dump device (``dumpon -l``), or None when dumps are off.
    """

    def command(self) -> str:
        return "dumpon -l"

    def requires_command(self) -> str:
        return "dumpon"

    @staticmethod
    def default():
        return None

    def process(self, output: list[str]):
        device = output[0].strip() if output else ""
        return None if device in ("", "/dev/null") else device

    @staticmethod
    def reading_scopes():
        return [("dump",)]


@readings.scoped(lambda: readings.touches(("dump",)))
@operation()
def dumps_off():
    """
    Turn crash dumps off now (``dumpon off``); ``dumpdev="NO"`` in rc.conf keeps them off at boot.

    **Example:**

    .. code:: python

        system.dumps_off()
    """
    if readings.fact(DumpDevice) is None:
        host.noop("crash dumps are already off")
        return
    yield StringCommand("dumpon", "off")
