"""The life of a new encrypted image, made safe to interrupt.

A marker file beside the image exists from just before the image is created until just after its filesystem is
made. An image with its marker has therefore never held data: an interrupted first deploy may throw it away and
start again. An image without the marker is never re-initialised, reformatted or deleted by torjail.
"""

from __future__ import annotations

import posixpath
from shlex import quote

from pyinfra import host
from pyinfra.api import HiddenValue, StringCommand, operation
from pyinfra.facts.files import File

from .geli import GeliProviders, geli_passphrase_text
from .md import MdDevices
from .mount import MountPoints

MARKER_SUFFIX = ".torjail-incomplete"


def marker_path(image: str) -> str:
    return image + MARKER_SUFFIX


@operation()
def incomplete_discarded(image: str, unit: int, mountpoint: str):
    """
    Throw away an image that a first deploy left half-made (its marker is still there), with its md unit,
    GELI provider and mount.

    + image: the image file
    + unit: its md unit number
    + mountpoint: where it may be mounted

    Every command re-checks the marker on the server, so an image without it is never touched.

    **Example:**

    .. code:: python

        image.incomplete_discarded("/var/jails/tor.img", 10, "/var/jails/tor")
    """
    marker = marker_path(image)
    if not host.get_fact(File, path=marker):
        host.noop(f"{image} is not a half-made image")
        return
    guard = f"test -e {quote(marker)} &&"
    if mountpoint in host.get_fact(MountPoints):
        yield StringCommand(f"{guard} umount -f {quote(mountpoint)}")
    if f"md{unit}.eli" in host.get_fact(GeliProviders):
        yield StringCommand(f"{guard} geli detach md{unit}.eli")
    if f"md{unit}" in host.get_fact(MdDevices):
        yield StringCommand(f"{guard} mdconfig -d -u {int(unit)}")
    yield StringCommand(f"{guard} rm -f {quote(image)} && rm -f {quote(marker)}")


@operation()
def created(image: str, size: str):
    """
    Create a new sparse image file of the given size, its marker first; fails if the image exists.

    + image: the image file
    + size: e.g. ``8G`` (truncate(1) units)

    **Example:**

    .. code:: python

        image.created("/var/jails/tor.img", "8G")
    """
    image_q = quote(image)
    yield StringCommand("install", "-d", "-m", "0700", quote(posixpath.dirname(image)))
    yield StringCommand(f"if [ -e {image_q} ]; then echo {quote(image + ' exists: not creating it again')} >&2; "
                        f"exit 1; fi; touch {quote(marker_path(image))} && truncate -s {quote(size)} {image_q}")


@operation()
def encrypted(image: str, unit: int, passphrase: HiddenValue, cipher: str = "AES-XTS", key_length: int = 256,
              sector_size: int = 4096):
    """
    Attach a new image as an md unit, write GELI metadata on it (no metadata backup on the server) and attach
    the GELI provider, the passphrase on standard input of both geli commands.

    + image: the image file (its marker must exist, or nothing happens)
    + unit: the md unit number for it
    + passphrase: ``HiddenValue``, sent on standard input only
    + cipher, key_length, sector_size: ``geli init`` options ``-e``, ``-l``, ``-s``

    Every command runs only while the marker exists on the server, so an image that ever held data is never
    initialised. The commands do not depend on what the server shows while planning: after a half-made image
    is discarded earlier in the same deploy, its old md unit and provider would still show then.

    **Example:**

    .. code:: python

        image.encrypted("/var/jails/tor.img", 10, passphrase=HiddenValue(secret))
    """
    secret = geli_passphrase_text(passphrase)
    guard = f"test -e {quote(marker_path(image))} &&"
    provider = f"md{int(unit)}"
    yield StringCommand(f"{guard} mdconfig -a -t vnode -f {quote(image)} -u {int(unit)}")
    yield StringCommand(f"{guard} geli init -e {quote(cipher)} -l {int(key_length)} -s {int(sector_size)} "
                        f"-B none -J - {provider}", _stdin=secret)
    yield StringCommand(f"{guard} geli attach -j - {provider}", _stdin=secret)


@operation()
def filesystem_made(image: str, provider: str):
    """
    Make the UFS filesystem on a new image's GELI provider, then drop the marker: from here on it holds data.

    + image: the image file (its marker must exist, or nothing happens)
    + provider: the attached GELI provider, e.g. ``md10.eli``

    **Example:**

    .. code:: python

        image.filesystem_made("/var/jails/tor.img", "md10.eli")
    """
    marker = marker_path(image)
    yield StringCommand(f"test -e {quote(marker)} && newfs -U /dev/{quote(provider)} && rm -f {quote(marker)}")


@operation()
def unlocked(image: str, unit: int, passphrase: HiddenValue):
    """
    Attach an image's md unit and its GELI provider with the passphrase on standard input; a wrong passphrase
    leaves everything as it was (the md unit attached for the attempt is detached again).

    + image: the image file
    + unit: its md unit number
    + passphrase: ``HiddenValue``, sent on standard input only

    **Example:**

    .. code:: python

        image.unlocked("/var/jails/tor.img", 10, passphrase=HiddenValue(secret))
    """
    provider = f"md{int(unit)}"
    if f"{provider}.eli" in host.get_fact(GeliProviders):
        host.noop(f"{provider}.eli is already attached")
        return
    attach_md = provider not in host.get_fact(MdDevices)
    script = ""
    undo = ""
    if attach_md:
        script = f"mdconfig -a -t vnode -f {quote(image)} -u {int(unit)} >/dev/null && "
        undo = f"mdconfig -d -u {int(unit)}; "
    failure = quote(f"torjail: geli could not attach {provider} (wrong passphrase?): nothing was changed")
    script += f"if ! geli attach -j - {provider}; then {undo}echo {failure} >&2; exit 1; fi"
    yield StringCommand(script, _stdin=passphrase.unmask())


@operation()
def checked_filesystem(provider: str, mountpoint: str):
    """
    Check the filesystem of an unlocked image with fsck(8) in preen mode, unless it is mounted.

    + provider: e.g. ``md10.eli``
    + mountpoint: where it is mounted when in use

    **Example:**

    .. code:: python

        image.checked_filesystem("md10.eli", "/var/jails/tor")
    """
    if mountpoint in host.get_fact(MountPoints):
        host.noop(f"{mountpoint} is mounted: no fsck")
        return
    yield StringCommand("fsck", "-t", "ufs", "-p", quote(f"/dev/{provider}"))
