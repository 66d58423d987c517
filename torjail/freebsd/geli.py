"""GELI (geli(8)) encrypted providers, the GELI metadata inside an image file, and its metadata backup.

The jail root lives on GELI over an md unit. Two facts show what an image path holds before anything
touches it: the attached providers (`geli list`), and the image file's own last sector, read without
attaching anything (GELI keeps its metadata there). The image procedures (torjail.procedures.image) build
on them so that `geli init` never runs on an image that already holds data.

Passphrases travel only on standard input (`-j -`, one `StringCommand(..., _stdin=...)` per
command) and must be given as pyinfra `HiddenValue`s, so pyinfra prints `*MASKED*` wherever it
records an operation's arguments.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct

from pyinfra import host
from pyinfra.api import (
    FactBase,
    FactProcessError,
    HiddenValue,
    OperationError,
    OperationValueError,
    QuoteString,
    StringCommand,
    operation,
)

from .md import MdDevices
from . import readings

GELI_MAGIC = b"GEOM::ELI"
METADATA_SECTOR = 512

# opencrypto/cryptodev.h numbers, named as g_eli_algo2str() prints them.
CIPHERS = {
    2: "3DES-CBC",
    3: "Blowfish-CBC",
    11: "AES-CBC",
    16: "NULL",
    21: "CAMELLIA-CBC",
    22: "AES-XTS",
}

# On-disk flags of struct g_eli_metadata (sys/geom/eli/g_eli.h), named as `geli list` prints them.
DISK_FLAGS = {
    0x001: "ONETIME",
    0x002: "BOOT",
    0x004: "W-DETACH",
    0x008: "RW-DETACH",
    0x010: "AUTH",
    0x020: "READ-ONLY",
    0x040: "NODELETE",
    0x080: "GELIBOOT",
    0x100: "GELIDISPLAYPASS",
    0x200: "AUTORESIZE",
}

_DEVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")


def device_name(device: str) -> str:
    """Return a GEOM device name without /dev/ ("md0" for "/dev/md0")."""
    name = device[len("/dev/") :] if device.startswith("/dev/") else device
    if not _DEVICE.match(name) or name.endswith(".eli"):
        raise OperationValueError(f"not a device to put GELI on: {device!r}")
    return name


def geli_passphrase_text(passphrase: HiddenValue) -> str:
    if not isinstance(passphrase, HiddenValue):
        raise OperationValueError(
            "the GELI passphrase must be a pyinfra HiddenValue, so pyinfra never prints it",
        )
    text = passphrase.unmask()
    if not text or "\n" in text or "\r" in text:
        raise OperationValueError("the GELI passphrase must be one non-empty line (geli reads the first line only)")
    return text


class GeliProviders(FactBase):
    """
    Returns the attached GELI providers, from ``geli list``.

    .. code:: python

        {"md0.eli": {"state": "ACTIVE", "cipher": "AES-XTS", "key_length": 256,
                     "sector_size": 4096, "flags": [], "consumer": "md0", "onetime": False,
                     "version": 7}}

    When geom_eli is not loaded (``geli: Command 'list' not available``) there are none: ``{}``.
    """

    def command(self) -> str:
        # geli reports a missing geom_eli on stderr with exit 1; fold it into stdout to recognise it.
        return "geli list 2>&1 || true"

    def requires_command(self) -> str:
        return "geli"

    @staticmethod
    def default() -> dict:
        return {}

    @staticmethod
    def reading_scopes():
        return [("geli",)]

    def process(self, output: list[str]) -> dict:
        providers: dict[str, dict] = {}
        geom: dict | None = None
        section = None
        item_name = None

        for raw in output:
            line = raw.rstrip()
            if not line.strip():
                continue
            if line.startswith("geli:"):
                if "not available" in line:
                    return {}
                raise FactProcessError(f"geli list failed: {line}")

            stripped = line.strip()
            if stripped in ("Providers:", "Consumers:"):
                section = stripped[:-1].lower()
                item_name = None
                continue

            key, sep, value = stripped.partition(":")
            if not sep:
                raise FactProcessError(f"unexpected line in geli list output: {line!r}")
            value = value.strip()

            if key == "Geom name":
                geom = {
                    "state": None,
                    "cipher": None,
                    "key_length": None,
                    "sector_size": None,
                    "flags": [],
                    "consumer": None,
                    "onetime": False,
                    "version": None,
                }
                providers[value] = geom
                section = None
                continue
            if geom is None:
                raise FactProcessError(f"geli list output does not start with 'Geom name': {line!r}")

            item = re.match(r"^\d+\.\s+Name$", key)
            if item and section:
                item_name = value
                if section == "consumers" and geom["consumer"] is None:
                    geom["consumer"] = value
                continue

            if section is None:
                if key == "State":
                    geom["state"] = value
                elif key == "EncryptionAlgorithm":
                    geom["cipher"] = value
                elif key == "KeyLength":
                    geom["key_length"] = int(value)
                elif key == "Version":
                    geom["version"] = int(value)
                elif key == "Flags":
                    flags = [flag.strip() for flag in value.split(",") if flag.strip()]
                    geom["flags"] = [flag for flag in flags if flag != "NONE"]
                    geom["onetime"] = "ONETIME" in geom["flags"]
            elif section == "providers" and key == "Sectorsize" and item_name is not None:
                if geom["sector_size"] is None:
                    geom["sector_size"] = int(value)

        return providers


def decode_metadata(sector: bytes) -> dict | None:
    """Decode struct g_eli_metadata from a provider's last sector; None without the GELI magic."""
    if len(sector) < METADATA_SECTOR or sector[:16].rstrip(b"\0") != GELI_MAGIC:
        return None
    (version,) = struct.unpack_from("<I", sector, 16)
    (flags,) = struct.unpack_from("<I", sector, 20)
    if version == 0:
        # version 0 has no md_aalgo field
        ealgo, keylen, provsize, sectorsize = struct.unpack_from("<HHQI", sector, 24)
        end = 24 + 2 + 2 + 8 + 4 + 1 + 4 + 64 + 384
    else:
        ealgo, keylen, _aalgo, provsize, sectorsize = struct.unpack_from("<HHHQI", sector, 24)
        end = 24 + 2 + 2 + 2 + 8 + 4 + 1 + 4 + 64 + 384
    checksum_ok = hashlib.md5(sector[:end], usedforsecurity=False).digest() == sector[end : end + 16]
    names = [name for bit, name in DISK_FLAGS.items() if flags & bit]
    return {
        "version": version,
        "cipher": CIPHERS.get(ealgo, f"unknown({ealgo})"),
        "key_length": keylen,
        "sector_size": sectorsize,
        "provider_size": provsize,
        "flags": names,
        "onetime": "ONETIME" in names,
        "checksum_ok": checksum_ok,
    }


class GeliImage(FactBase):
    """
    Returns what an image file holds, read on the server without attaching anything.

    + path: absolute path of the image file

    .. code:: python

        {"state": "geli", "size": 2147483648, "md_unit": "md0", "cipher": "AES-XTS",
         "key_length": 256, "sector_size": 4096, "version": 7, "flags": [], "onetime": False,
         "provider_size": 2147483648, "checksum_ok": True, "seal": "9f86d0..."}

    ``state`` is ``"absent"`` (no such file), ``"geli"`` (the last 512-byte sector starts with the
    GELI magic ``GEOM::ELI``: metadata present) or ``"unknown"`` (something exists without GELI
    metadata). ``md_unit`` names the md unit backing the file, if any. ``seal`` is the sha256 of the
    last sector (what ``tail -c 512 FILE | sha256`` prints on the server; None for a file shorter
    than a sector). The last sector is read with dd and od; the size with ``stat -f %z`` (FreeBSD's
    stat). With no output at all the fact says ``"unknown"``: an image we could not read is never
    taken for a missing one.
    """

    def command(self, path: str) -> StringCommand:
        # process() runs on the same instance and needs the path to pick the md unit backing it.
        self.path = path
        p = QuoteString(path)
        return StringCommand(
            "if [ -f", p, "]; then",
            "size=$(stat -f %z", p, ") &&",
            'echo "size $size" &&',
            'if [ "$size" -ge 512 ]; then',
            "echo sector;",
            "dd", StringCommand("if=", p, _separator=""),
            "bs=512 skip=$((size / 512 - 1)) count=1 2>/dev/null | od -An -v -t x1;",
            "fi &&",
            "echo units && mdconfig -l -v;",
            "elif [ -e", p, "]; then echo other;",
            "else echo absent; fi",
        )

    @staticmethod
    def default() -> dict:
        return _image("unknown")

    def process(self, output: list[str]) -> dict:
        lines = [line for line in output if line.strip()]
        if not lines:
            return self.default()
        if lines[0].strip() == "absent":
            return _image("absent")
        if lines[0].strip() == "other":
            return _image("unknown")

        size = None
        hex_bytes: list[str] = []
        unit_lines: list[str] = []
        part = None
        for line in lines:
            word = line.strip()
            if word.startswith("size "):
                size = int(word.split()[1])
            elif word in ("sector", "units"):
                part = word
            elif part == "sector":
                hex_bytes.extend(word.split())
            elif part == "units":
                unit_lines.append(line)
            else:
                raise FactProcessError(f"unexpected line in image probe output: {line!r}")

        sector = bytes(int(byte, 16) for byte in hex_bytes)
        metadata = decode_metadata(sector)
        result = _image("geli" if metadata else "unknown", size)
        if metadata:
            result.update(metadata)
        if len(sector) == METADATA_SECTOR:
            result["seal"] = hashlib.sha256(sector).hexdigest()

        units = MdDevices().process(unit_lines)
        path = getattr(self, "path", None)
        result["md_unit"] = next((name for name, unit in sorted(units.items()) if unit["file"] == path), None)
        return result


def _image(state: str, size: int | None = None) -> dict:
    return {"state": state, "size": size, "md_unit": None, "seal": None}


@operation()
def provider(device: str, passphrase: HiddenValue | None = None, attached: bool = True,
             detach_on_last_close: bool = False):
    """
    Attach a GELI provider with its passphrase (creates ``/dev/DEVICE.eli``), or detach it.

    + device: GELI-initialised provider (``"md0"`` or ``"/dev/md0"``)
    + passphrase: ``HiddenValue`` holding the passphrase, sent on standard input only (``-j -``); needed when
      ``attached``
    + attached: ``False`` detaches ``DEVICE.eli``
    + detach_on_last_close: ``-d``, detach once the last user (e.g. a mount) closes it

    A wrong passphrase makes geli exit 1 ("Wrong key for md0.") and nothing is attached.

    **Example:**

    .. code:: python

        geli.provider("md0", passphrase=HiddenValue(secret))
    """
    name = device_name(device)
    secret = geli_passphrase_text(passphrase) if attached else None
    is_attached = f"{name}.eli" in readings.fact(GeliProviders)
    if attached == is_attached:
        host.noop(f"{name}.eli is already {'attached' if attached else 'detached'}")
        return
    if not attached:
        yield StringCommand("geli", "detach", QuoteString(f"{name}.eli"))
        return
    args: list = ["geli", "attach"]
    if detach_on_last_close:
        args.append("-d")
    args.extend(["-j", "-", QuoteString(name)])
    yield StringCommand(*args, _stdin=secret)


def read_backup(host, device: str) -> bytes:
    """The metadata backup of an attached provider's device (`geli backup DEVICE /dev/stdout`, through a pipe:
    never a file on the server's disk); only while pyinfra executes, and never printed or logged."""
    command = StringCommand("geli", "backup", QuoteString(device_name(device)), "/dev/stdout", "|", "base64")
    status, output = host.run_shell_command(command, print_output=False, print_input=False)
    sector = base64.b64decode("".join(output.stdout_lines))
    if not status or not sector.startswith(GELI_MAGIC):
        raise OperationError(f"geli backup {device_name(device)} gave no GELI metadata: {output.stderr[-300:]}")
    return sector
