"""Validation of the single values inside pf.conf rules.

Addresses, ports, protocols, ICMP types, TCP flags and interface names are
plain words to the pf grammar; pfctl gives them meaning through host(),
getservice(), getprotobyname() and friends.  The functions here do the same
for the values torjail writes and raise ValueError with a pfctl-style message
for anything else.

Deliberately narrower than pfctl (so a typo cannot slip through as something
pfctl would resolve at load time): host names and bare interface names are
not addresses (pfctl looks them up on the machine that loads the file),
abbreviated IPv4 forms like ``10/8`` or ``1.2.3`` are rejected, port 0 and
inverted port ranges are rejected (pfctl accepts them; they match nothing
useful), and only a short list of service and protocol names is known.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# Service names torjail may write, as in FreeBSD's /etc/services.
SERVICES = {"ssh": 22, "smtp": 25, "domain": 53, "http": 80, "www": 80, "ntp": 123, "https": 443}

# Protocol names from FreeBSD's /etc/protocols that the checker knows.
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "ipv6-icmp": 58}
TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58

# pfctl_parser.c icmp_type[] and icmp6_type[].
ICMP_TYPES = {
    "echorep": 0, "unreach": 3, "squench": 4, "redir": 5, "althost": 6, "echoreq": 8,
    "routeradv": 9, "routersol": 10, "timex": 11, "paramprob": 12, "timereq": 13,
    "timerep": 14, "inforeq": 15, "inforep": 16, "maskreq": 17, "maskrep": 18,
    "trace": 30, "dataconv": 31, "mobredir": 32, "ipv6-where": 33, "ipv6-here": 34,
    "mobregreq": 35, "mobregrep": 36, "skip": 39, "photuris": 40,
}
ICMP6_TYPES = {
    "unreach": 1, "toobig": 2, "timex": 3, "paramprob": 4, "echoreq": 128, "echorep": 129,
    "groupqry": 130, "listqry": 130, "grouprep": 131, "listenrep": 131, "groupterm": 132,
    "listendone": 132, "routersol": 133, "routeradv": 134, "neighbrsol": 135,
    "neighbradv": 136, "redir": 137, "routrrenum": 138, "wrureq": 139, "wrurep": 140,
    "fqdnreq": 139, "fqdnrep": 140, "niqry": 139, "nirep": 140, "mtraceresp": 200,
    "mtrace": 201,
}

TCP_FLAGS = "FSRPAUEW"

# FreeBSD interface names are a driver name plus a unit number (vtnet0, lo1),
# vlan(4) interfaces add ".tag" (vtnet0.100); interface group names must not
# end in a digit (egress, tor).
_INTERFACE = re.compile(r"[a-z]+[0-9]+(\.[0-9]+)?")
_GROUP = re.compile(r"[a-z][a-z0-9_]*[a-z_]|[a-z]")
_IPV4ISH = re.compile(r"[0-9.]+")
_DYNAMIC_MODIFIERS = ("network", "broadcast", "peer", "0")
IFNAMSIZ = 16


@dataclass(frozen=True)
class Host:
    """One address of a rule: ``kind`` is address, table, dynamic or self."""

    kind: str
    text: str
    line: int
    family: int | None = None  # 4, 6, or None when pf decides at load time
    negated: bool = False


@dataclass(frozen=True)
class PortItem:
    """A port test: op is '=', '!=', '<', '<=', '>', '>=', '><', '<>' or ':'."""

    op: str
    low: int
    high: int
    line: int


def check_interface(name: str, *, group_ok: bool = True) -> None:
    """An interface (vtnet0) or, where pf allows it, an interface group (egress)."""
    if len(name) >= IFNAMSIZ:
        raise ValueError(f"interface name too long: '{name}'")
    if _INTERFACE.fullmatch(name):
        return
    if group_ok and _GROUP.fullmatch(name):
        return
    raise ValueError(
        f"invalid interface name '{name}': expected a driver name and unit like vtnet0"
        + (" or an interface group like egress" if group_ok else "")
    )


def parse_address(text: str, bits: int | None, line: int, negated: bool = False) -> Host:
    """A literal address with an optional prefix length, or ``self``."""
    if text == "self" and bits is None:
        return Host("self", text, line, None, negated)
    shown = text if bits is None else f"{text}/{bits}"
    name, _, modifiers = text.partition(":")
    if _INTERFACE.fullmatch(name) and all(m in _DYNAMIC_MODIFIERS for m in modifiers.split(":") if modifiers):
        raise ValueError(
            f"bare interface name '{text}' as an address is resolved on the machine running pfctl; "
            f"write '({text})' instead"
        )
    if ":" in text:
        family, max_bits = 6, 128
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise ValueError(f"could not parse host specification '{shown}': not a valid IPv6 address") from None
    elif _IPV4ISH.fullmatch(text):
        family, max_bits = 4, 32
        try:
            ipaddress.IPv4Address(text)
        except ValueError:
            raise ValueError(
                f"could not parse host specification '{shown}': not a valid IPv4 address (four numbers 0-255)"
            ) from None
    else:
        raise ValueError(f"could not parse host specification '{shown}': host names are not accepted, use an address")
    if bits is not None and not 0 <= bits <= max_bits:
        raise ValueError(f"invalid netmask '{shown}': an IPv{family} prefix length is 0-{max_bits}")
    return Host("address", shown, line, family, negated)


def parse_dynamic(text: str, line: int, negated: bool = False) -> Host:
    """``(vtnet0)``, ``(vtnet0:0)``, ``(egress:network)``: the interface's addresses, followed by pf."""
    name, *modifiers = text.split(":")
    if not name[:1].isalpha():
        raise ValueError(f"invalid interface name '{name}'")
    for modifier in modifiers:
        if modifier not in _DYNAMIC_MODIFIERS:
            raise ValueError(f"interface {text} has bad modifier")
    if sum(m in ("network", "broadcast", "peer") for m in modifiers) > 1:
        raise ValueError("illegal combination of interface modifiers")
    check_interface(name)
    return Host("dynamic", f"({text})", line, None, negated)


def parse_table_name(name: str) -> str:
    if len(name) >= 32:
        raise ValueError(f"table name '{name}' too long")
    if not name:
        raise ValueError("empty table name")
    return name


def _port_number(word: str) -> int:
    if word.isascii() and word.isdigit():
        value = int(word)
        if value > 65535:
            raise ValueError(f"illegal port value {value}")
        if value == 0:
            raise ValueError("illegal port value 0 (ports are 1-65535)")
        return value
    if word in SERVICES:
        return SERVICES[word]
    known = ", ".join(sorted(SERVICES))
    raise ValueError(f"unknown port {word} (known names: {known})")


def parse_port_word(word: str, line: int, *, star_ok: bool = False) -> PortItem:
    """A port, a service name or a range ``low:high`` (``low:*`` when star_ok)."""
    if ":" not in word:
        value = _port_number(word)
        return PortItem("=", value, value, line)
    low_text, _, high_text = word.partition(":")
    low = _port_number(low_text)
    if star_ok and high_text == "*":
        return PortItem(":", low, 65535, line)
    high = _port_number(high_text)
    if low > high:
        raise ValueError(f"port range {word} is inverted: the first port must not be above the second")
    return PortItem("=" if low == high else ":", low, high, line)


def parse_protocol(word: str | int) -> int:
    if isinstance(word, int):
        if word == 0:
            raise ValueError("proto 0 cannot be used")
        if not 0 < word <= 255:
            raise ValueError("protocol outside range")
        return word
    if word in PROTOCOLS:
        return PROTOCOLS[word]
    raise ValueError(f"unknown protocol {word} (known names: {', '.join(sorted(PROTOCOLS))})")


def parse_icmp_type(word: str | int, family: int) -> int:
    keyword = "icmp-type" if family == 4 else "icmp6-type"
    if isinstance(word, int):
        if not 0 <= word <= 255:
            raise ValueError(f"illegal {keyword} {word}")
        return word
    table = ICMP_TYPES if family == 4 else ICMP6_TYPES
    if word not in table:
        raise ValueError(f"unknown {keyword} {word}")
    return table[word]


def parse_flags(word: str) -> int:
    """TCP flag letters to a bit set, like pfctl's parse_flags()."""
    bits = 0
    for letter in word:
        position = TCP_FLAGS.find(letter)
        if position < 0:
            raise ValueError(f"bad flags {word}: use letters from {TCP_FLAGS}")
        bits |= 1 << position
    return bits
