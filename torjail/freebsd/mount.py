"""Mounted filesystems (`mount -p`), and mounting the jail root for the time a deploy writes into it.

The jail's own `mount` parameter mounts its encrypted root when the jail starts. A deploy that populates a root
before the jail ever ran mounts it by hand, and hands it back unmounted before `jail -c`.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import FactBase, OperationError, OperationValueError, QuoteString, StringCommand, operation
from . import readings


class MountPoints(FactBase):
    """
    Returns the mounted filesystems, from ``mount -p`` (fstab format), by mount point.

    .. code:: python

        {"/var/jails/tor": {"device": "/dev/md10.eli", "type": "ufs", "options": ["rw"]}}

    Ours rather than pyinfra's ``server.Mounts``, which answers the same question: that one asks
    ``server.Kernel`` (``uname``) first, one more remote command each time it is read (pyinfra 3 keeps no facts
    between reads), and on FreeBSD reads ``mount -p --libxo json``; ours reads plain ``mount -p`` in one command.
    """

    def command(self) -> str:
        return "mount -p"

    def requires_command(self) -> str:
        return "mount"

    @staticmethod
    def default() -> dict:
        return {}

    def process(self, output: list[str]) -> dict:
        mounts = {}
        for line in output:
            fields = line.split()
            if len(fields) >= 4:
                mounts[fields[1]] = {"device": fields[0], "type": fields[2], "options": fields[3].split(",")}
        return mounts

    @staticmethod
    def reading_scopes():
        return [("mount",)]


def _touches(path, device, mounted, fstype, options, assume_mounted):
    """The mount table, and every file below the mount point (another filesystem shows there now)."""
    return readings.touches(("mount",), readings.path_scope(path))


@readings.scoped(_touches)
@operation()
def mount(path: str, device: str | None = None, mounted: bool = True, fstype: str = "ufs",
          options: tuple[str, ...] = (), assume_mounted: bool = False):
    """
    Mount a device on a directory unless that device is already mounted there, or unmount the directory.

    + path: the mount point
    + device: e.g. ``/dev/md10.eli`` (needed when ``mounted``)
    + mounted: ``False`` unmounts whatever is mounted on the path
    + fstype: filesystem type (``mount -t``)
    + options: mount options (``mount -o``), e.g. ``("nosuid",)``
    + assume_mounted: when unmounting, an earlier operation of the same deploy mounts it: unmount without
      asking the server (pyinfra plans every operation before the first one runs, so the mount would not show yet)

    Something else mounted on the path is an error: nothing is mounted over it.

    **Example:**

    .. code:: python

        mount.mount("/var/jails/tor", device="/dev/md10.eli", options=("nosuid",))
    """
    if not mounted:
        if not assume_mounted and path not in readings.fact(MountPoints):
            host.noop(f"nothing is mounted on {path}")
            return
        yield StringCommand("umount", QuoteString(path))
        return

    if device is None:
        raise OperationValueError(f"{path}: mounting needs a device")
    current = readings.fact(MountPoints).get(path)
    if current and current["device"] == device:
        host.noop(f"{device} is already mounted on {path}")
        return
    if current:
        raise OperationError(f"{path} has {current['device']} mounted, not {device}; refusing to mount over it")
    option_words = ["-o", QuoteString(",".join(options))] if options else []
    yield StringCommand("mount", "-t", QuoteString(fstype), *option_words, QuoteString(device), QuoteString(path))
