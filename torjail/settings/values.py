"""How one value is read and checked, where several settings (or other modules) need the same reading.

A size for truncate(1) and mdconfig(8), an amount in tor's units, an interface name, an absolute path, a pf
network, a torrc value, a port: each read the same way wherever a setting holds one, so each has one function here.
`Port`, `AbsolutePath` and the jail's own types carry the checks of settings that share them (a host's first jail
and each of its listed jails) as the types of their fields.
"""

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator

SIZE_UNITS = {"M": 2**20, "G": 2**30, "T": 2**40}
TOR_BYTE_UNITS = {
    "bytes": 1, "KBytes": 2**10, "MBytes": 2**20, "GBytes": 2**30, "TBytes": 2**40,
    "KBits": 2**10 // 8, "MBits": 2**20 // 8, "GBits": 2**30 // 8,
}

# Every pattern is applied with fullmatch and spells digits [0-9]: `$` would let a trailing newline through, and
# `\d` matches digits of every script, which int() then reads but no FreeBSD tool does.
SIZE = re.compile(r"([1-9][0-9]*)([MGT])")
TOR_AMOUNT = re.compile(r"([1-9][0-9]{0,19}) (" + "|".join(TOR_BYTE_UNITS) + r")")
INTERFACE = re.compile(r"[a-z][a-z0-9_]*[0-9]+")
IFNAMSIZ = 16  # an interface name has at most 15 characters
ABSOLUTE_PATH = re.compile(r"(/[A-Za-z0-9._+-]+)+")
NETWORK = re.compile(r"([0-9A-Fa-f:.]+)(?:/(0|[1-9][0-9]{0,2}))?")
JAIL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
JAIL_NAME_MAX = 238  # jail_NAME_console.log must fit NAME_MAX (255)
PRIVATE_V4 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
MIN_IMAGE_BYTES = 2 * 2**30  # a FreeBSD base system plus tor and its state
MAX_IMAGE_BYTES = 2 * 2**40
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_size(value):
    """'8G' -> bytes; sizes are binary (M, G, T) as truncate(1) and mdconfig(8) read them."""
    match = SIZE.fullmatch(value)
    if not match:
        raise ValueError(f"expected a size like 8G or 512M, got {value!r}")
    return int(match.group(1)) * SIZE_UNITS[match.group(2)]


def parse_tor_amount(value):
    """'500 GBytes' -> bytes, in tor's own units (powers of two), so torrc gets exactly what was written."""
    match = TOR_AMOUNT.fullmatch(value)
    if not match:
        units = ", ".join(TOR_BYTE_UNITS)
        raise ValueError(f"expected a number and one of tor's units ({units}), like '500 GBytes', got {value!r}")
    return int(match.group(1)) * TOR_BYTE_UNITS[match.group(2)]


def expect_interface_name(value):
    """A network interface name as ifconfig(8) shows it (driver and unit, like vtnet0), or ValueError."""
    if not INTERFACE.fullmatch(value) or len(value) >= IFNAMSIZ:
        raise ValueError(f"expected an interface name like vtnet0 or igb0 (at most {IFNAMSIZ - 1} characters), "
                         f"got {value!r}")
    return value


def expect_absolute_path(value):
    """A path the host's shell and tools read as written: absolute, no spaces, no '.' or '..' to climb with."""
    if not ABSOLUTE_PATH.fullmatch(value) or "/../" in value + "/" or "/./" in value + "/":
        raise ValueError(f"expected an absolute path without spaces, '.' or '..', got {value!r}")
    return value


def expect_torrc_value(value):
    """A value tor reads back exactly as written: torrc's parser ends a line at a newline, reads `#` as the start
    of a comment anywhere in an unquoted value, joins the next line after a trailing backslash, strips spaces at
    both ends and reads a value beginning with a double quote as a C string."""
    bad = next((c for c in value if not c.isprintable()), None)
    if bad is not None:
        raise ValueError(f"expected one line of printable characters, got the control character U+{ord(bad):04X}")
    if "#" in value:
        raise ValueError(f"expected no '#': tor reads everything after it as a comment, got {value!r}")
    if value.endswith("\\"):
        raise ValueError(f"expected no trailing backslash: tor joins the next torrc line to it, got {value!r}")
    if value != value.strip():
        raise ValueError(f"expected no spaces at either end (tor drops them), got {value!r}")
    if value.startswith('"'):
        raise ValueError(f"expected no double quote at the start (tor reads a quoted string), got {value!r}")
    return value


def expect_network(value):
    """A network as a pf table takes it: an address and a prefix length, no netmask, no %zone, no host bits
    (the kernel's table code refuses an entry with host bits set)."""
    match = NETWORK.fullmatch(value)
    try:
        network = ipaddress.ip_network(value, strict=False) if match else None
    except ValueError:
        network = None
    if network is None:
        raise ValueError(f"expected networks like 198.51.100.0/24 or 2001:db8::/48 (a prefix length, not a "
                         f"netmask; no %zone), got {value!r}")
    if network.network_address != ipaddress.ip_address(match.group(1)):
        raise ValueError(f"expected a network without host bits, like {network}, got {value!r}")
    return value


def expect_port(value, allow_zero=False):
    """A TCP port; with allow_zero, 0 too (a port that is off)."""
    low = 0 if allow_zero else 1
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 65535:
        expected = "0 (off) or a port 1-65535" if allow_zero else "a port 1-65535"
        raise ValueError(f"expected {expected}, got {value!r}")
    return value


def expect_jail_name(value):
    """A name jail(8) takes for a jail of its own (not a jail id, not a child jail) and that names its files."""
    if not JAIL_NAME.fullmatch(value) or value.isdigit() or len(value) > JAIL_NAME_MAX:
        raise ValueError(f"expected a jail name of letters, digits, '_' and '-', not starting with '-', not all "
                         f"digits (jail(8) reads those as a jail id), no '.' (a child jail), at most "
                         f"{JAIL_NAME_MAX} characters, got {value!r}")
    return value


def expect_jail_address(value):
    """A jail's address on the cloned loopback: private IPv4, which pf redirects to and NATs from."""
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"expected a private IPv4 address like 10.0.0.1, got {value!r}") from None
    if not any(address in net for net in PRIVATE_V4):
        raise ValueError(f"expected a private IPv4 address (10/8, 172.16/12, 192.168/16), got {value}")
    return value


def expect_image_size(value):
    """The size of an encrypted image: room for a base system, at most what mdconfig is asked for here."""
    size = parse_size(value)
    if not MIN_IMAGE_BYTES <= size <= MAX_IMAGE_BYTES:
        raise ValueError(f"expected a size from 2G to 2T (a base system needs 2G), got {value!r}")
    return value


def expect_md_unit(value):
    if not 0 <= value <= 99:
        raise ValueError(f"expected an md unit number 0-99, got {value!r}")
    return value


def expect_env_name(value):
    """The NAME of an environment variable (one that holds the GELI passphrase: never the passphrase itself)."""
    if not ENV_NAME.fullmatch(value):
        raise ValueError("expected the NAME of an environment variable (not the passphrase), got a bad name")
    return value


def expect_command(value):
    """A command as a list of words, run without a shell (one that prints the GELI passphrase)."""
    if not value or not all(value) or any("\0" in word for word in value):
        raise ValueError("expected a command as a list of words, like ['pass', 'show', 'torjail/relay1']")
    return value


# The checks settings share, as the types of their fields: or_port and sshd_port, jail_root and image_path, and
# the settings every jail has (its name, address, image size, md unit and where its passphrase comes from).
Port = Annotated[int, AfterValidator(expect_port)]
AbsolutePath = Annotated[str, AfterValidator(expect_absolute_path)]
JailName = Annotated[str, AfterValidator(expect_jail_name)]
JailAddress = Annotated[str, AfterValidator(expect_jail_address)]
ImageSize = Annotated[str, AfterValidator(expect_image_size)]
MdUnit = Annotated[int, AfterValidator(expect_md_unit)]
EnvName = Annotated[str, AfterValidator(expect_env_name)]
Command = Annotated[list[str], AfterValidator(expect_command)]
