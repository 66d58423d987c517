"""The life of a new encrypted image, made safe to interrupt, and the record of every image torjail made.

A marker file beside the image exists from just before the image is created until just after its filesystem is
made. An image with its marker has therefore never held data: an interrupted first deploy may throw it away and
start again. The marker names the image it belongs to: it holds the sha256 of the image's last sector as torjail
last wrote it (a random sector at creation, then the GELI metadata that `geli init` writes there, salt and
encrypted keys included). Any other file found at the path, a restored or migrated image above all, has another
last sector: it is never initialised, reformatted or removed, and every command checks that again on the server
before it runs. Once the filesystem is made, a record under /var/db/torjail/images says that an image was made
at that path, so a deploy that later finds the path empty stops instead of making a new, empty vault.
"""

from __future__ import annotations

import posixpath
from shlex import quote

from pyinfra import host
from pyinfra.api import FactBase, HiddenValue, OperationError, StringCommand, operation

from torjail.freebsd.geli import GeliImage, GeliProviders, geli_passphrase_text
from torjail.freebsd.md import MdDevices
from torjail.freebsd.mount import MountPoints
from torjail.freebsd import readings

MARKER_SUFFIX = ".torjail-incomplete"
RECORDS = "/var/db/torjail/images"


def marker_path(image: str) -> str:
    return image + MARKER_SUFFIX


def record_path(image: str) -> str:
    """Where the record of an image made at `image` lives: the image's path under /var/db/torjail/images."""
    return RECORDS + image


def seal(image: str) -> str:
    """sh printing the sha256 of the image's last sector (what a marker holds)."""
    return f"tail -c 512 {quote(image)} | sha256"


def belongs_guard(image: str) -> str:
    """sh that stops with a message (exit 1) unless the image is the half-made one its marker names."""
    marker = marker_path(image)
    refusal = quote(f"torjail: {image} is not the half-made image that {marker} names: not touching it")
    return (f'if ! {{ [ -f {quote(image)} ] && [ "$(head -n 1 {quote(marker)} 2>/dev/null)" = "$({seal(image)})" ]; '
            f"}}; then echo {refusal} >&2; exit 1; fi; ")


class ImageFiles(FactBase):
    """
    Returns what the deploy must know about an image path before it touches anything there: the image file
    itself (``GeliImage``), its marker (the seal it holds, None without a marker), whether torjail's record of
    an image made there exists, and the space free (KiB, ``df -k``) where the image would go: its directory,
    or the nearest one that exists.

    + path: absolute path of the image file

    .. code:: python

        {"image": {"state": "absent", "size": None, "md_unit": None, "seal": None},
         "marker": None, "record": False, "free_kb": 20971520}

    ``free_kb`` is None when df printed nothing usable.
    """

    def command(self, path: str) -> StringCommand:
        # process() runs on the same instance: the image probe needs its path there.
        self.probe = GeliImage()
        marker, record = quote(marker_path(path)), quote(record_path(path))
        return StringCommand(
            self.probe.command(path),
            f"; echo '== marker'; if [ -f {marker} ]; then echo present; head -n 1 {marker}; fi; "
            f"echo '== record'; if [ -f {record} ]; then echo present; fi; "
            f"echo '== df'; d={quote(posixpath.dirname(path) or '/')}; "
            'while [ ! -d "$d" ]; do d=$(dirname "$d"); done; df -k "$d"',
        )

    @staticmethod
    def default() -> dict:
        return {"image": GeliImage.default(), "marker": None, "record": False, "free_kb": None}

    def process(self, output: list[str]) -> dict:
        sections: dict[str, list[str]] = {"image": []}
        current = sections["image"]
        for line in output:
            if line.startswith("== ") and line[3:] in ("marker", "record", "df"):
                current = sections.setdefault(line[3:], [])
            else:
                current.append(line)
        marker = sections.get("marker", [])
        return {
            "image": self.probe.process(sections["image"]),
            "marker": (marker[1].strip() if len(marker) > 1 else "") if marker[:1] == ["present"] else None,
            "record": sections.get("record", [])[:1] == ["present"],
            "free_kb": _available_kb(sections.get("df", [])),
        }


def _available_kb(lines: list[str]) -> int | None:
    """The Avail column of `df -k` (header, then one line per filesystem; it can be negative on UFS)."""
    rows = [line.split() for line in lines[1:] if line.strip()]
    try:
        return int(rows[-1][3])
    except (IndexError, ValueError):
        return None


@operation()
def incomplete_discarded(image: str, unit: int, mountpoint: str):
    """
    Throw away an image that a first deploy left half-made (its marker is still there and names it), with its
    md unit, GELI provider and mount.

    + image: the image file
    + unit: its md unit number
    + mountpoint: where it may be mounted

    Every command re-checks on the server that the marker names the image, so no other file is ever touched.

    **Example:**

    .. code:: python

        image.incomplete_discarded("/var/jails/tor.img", 10, "/var/jails/tor")
    """
    marker = marker_path(image)
    if readings.fact(ImageFiles, path=image)["marker"] is None:
        host.noop(f"{image} is not a half-made image")
        return
    guard = belongs_guard(image)
    if mountpoint in readings.fact(MountPoints):
        yield StringCommand(f"{guard}umount -f {quote(mountpoint)}")
    if f"md{unit}.eli" in readings.fact(GeliProviders):
        yield StringCommand(f"{guard}geli detach md{unit}.eli")
    if f"md{unit}" in readings.fact(MdDevices):
        yield StringCommand(f"{guard}mdconfig -d -u {int(unit)}")
    yield StringCommand(f"{guard}rm -f {quote(image)} && rm -f {quote(marker)}")


@operation()
def created(image: str, size: str):
    """
    Create a new sparse image file of the given size, its marker first; fails if the image or a marker exists.

    + image: the image file
    + size: e.g. ``8G`` (truncate(1) units)

    The image's directory is made (mode 0700) only when it does not exist: an existing one keeps its mode
    (an image in /usr/home must not lock users out). The image's last sector gets 512 random bytes and the
    marker their sha256, so the marker names this very file.

    **Example:**

    .. code:: python

        image.created("/var/jails/tor.img", "8G")
    """
    image_q, marker_q = quote(image), quote(marker_path(image))
    directory = quote(posixpath.dirname(image))
    yield StringCommand(f"test -d {directory} || install -d -m 0700 {directory}")
    yield StringCommand(
        f"if [ -e {image_q} ]; then echo {quote(image + ' exists: not creating it again')} >&2; exit 1; fi; "
        f"if [ -e {marker_q} ]; then echo {quote(marker_path(image) + ' exists without its image: not making one')} "
        ">&2; exit 1; fi; "
        "sector=$(od -An -N256 -tx1 /dev/random | tr -d ' \\n') && "
        f'printf %s "$sector" | sha256 > {marker_q} && truncate -s {quote(size)} {image_q} && '
        f'printf %s "$sector" | dd of={image_q} bs=512 seek=$(($(stat -f %z {image_q}) / 512 - 1)) conv=notrunc '
        "2>/dev/null")


@operation()
def encrypted(image: str, unit: int, passphrase: HiddenValue, cipher: str = "AES-XTS", key_length: int = 256,
              sector_size: int = 4096):
    """
    Attach a new image as an md unit, write GELI metadata on it (no metadata backup on the server) and attach
    the GELI provider, the passphrase on standard input of both geli commands.

    + image: the image file (its marker must name it, or nothing happens)
    + unit: the md unit number for it
    + passphrase: ``HiddenValue``, sent on standard input only
    + cipher, key_length, sector_size: ``geli init`` options ``-e``, ``-l``, ``-s``

    Every command runs only while the marker names the image on the server, so an image that ever held data is
    never initialised; after ``geli init`` the marker takes the seal of the new metadata. The commands do not
    depend on what the server shows while planning: after a half-made image is discarded earlier in the same
    deploy, its old md unit and provider would still show then.

    **Example:**

    .. code:: python

        image.encrypted("/var/jails/tor.img", 10, passphrase=HiddenValue(secret))
    """
    secret = geli_passphrase_text(passphrase)
    guard = belongs_guard(image)
    provider = f"md{int(unit)}"
    yield StringCommand(f"{guard}mdconfig -a -t vnode -f {quote(image)} -u {int(unit)}")
    yield StringCommand(f"{guard}geli init -e {quote(cipher)} -l {int(key_length)} -s {int(sector_size)} "
                        f"-B none -J - {provider} && {seal(image)} > {quote(marker_path(image))}", _stdin=secret)
    yield StringCommand(f"{guard}geli attach -j - {provider}", _stdin=secret)


@operation()
def filesystem_made(image: str, provider: str):
    """
    Make the UFS filesystem on a new image's GELI provider, record that an image was made at this path, then
    drop the marker: from here on it holds data.

    + image: the image file (its marker must name it, or nothing happens)
    + provider: the attached GELI provider, e.g. ``md10.eli``

    **Example:**

    .. code:: python

        image.filesystem_made("/var/jails/tor.img", "md10.eli")
    """
    yield StringCommand(f"{belongs_guard(image)}newfs -U /dev/{quote(provider)} && {_record(image)} && "
                        f"rm -f {quote(marker_path(image))}")


def _record(image: str) -> str:
    """sh writing the record of an image made at `image`."""
    record = record_path(image)
    note = quote(f"torjail made an encrypted image at {image}. While this file exists, a deploy that finds no "
                 "image there stops instead of making a new, empty one.")
    return f"mkdir -p {quote(posixpath.dirname(record))} && echo {note} > {quote(record)}"


@operation()
def recorded(image: str):
    """
    Write the record of an existing image that has none (made before torjail kept records, or moved to this
    path by hand), so that a later deploy finding the path empty stops.

    + image: the image file; the command does nothing unless it exists on the server

    **Example:**

    .. code:: python

        image.recorded("/var/jails/tor.img")
    """
    yield StringCommand(f"if [ -f {quote(image)} ]; then {_record(image)}; fi")


@operation()
def unlocked(image: str, unit: int, passphrase: HiddenValue):
    """
    Attach an image's md unit and its GELI provider with the passphrase on standard input; a wrong passphrase
    leaves everything as it was (the md unit attached for the attempt is detached again). An image already
    attached as another md unit, or the unit attached to another file, is an error: one image is never
    attached twice, and no other file is unlocked in its place.

    + image: the image file
    + unit: its md unit number
    + passphrase: ``HiddenValue``, sent on standard input only

    **Example:**

    .. code:: python

        image.unlocked("/var/jails/tor.img", 10, passphrase=HiddenValue(secret))
    """
    provider = f"md{int(unit)}"
    if f"{provider}.eli" in readings.fact(GeliProviders):
        host.noop(f"{provider}.eli is already attached")
        return
    units = readings.fact(MdDevices)
    if provider in units and units[provider]["file"] != image:
        raise OperationError(f"{provider} is attached to {units[provider]['file'] or units[provider]['type']}, "
                             f"not {image}: not unlocking it")
    for other, found in sorted(units.items()):
        if found["file"] == image and other != provider:
            raise OperationError(f"{image} is already attached as {other}: one image is never attached twice")
    attach_md = provider not in units
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
    if mountpoint in readings.fact(MountPoints):
        host.noop(f"{mountpoint} is mounted: no fsck")
        return
    yield StringCommand("fsck", "-t", "ufs", "-p", quote(f"/dev/{provider}"))
