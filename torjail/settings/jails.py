"""A host's jails: the relays and onion services one server runs, each in a jail on its own encrypted image.

A host without `jails` runs one relay jail made from its flat settings, as every host did before it could list
jails. A host with `jails` lists each jail as a dict with its `kind`:

    relay          a Tor relay as today: its own nickname, ports, image and keys. It takes every setting of the
                   host as its default (release, GELI cipher, exit, accounting...), and may set those of
                   RELAY_SETTINGS for itself; the host's traffic_quota is split evenly among its relays.
    onion-service  a service (a web server, a proxy) in its own jail, published only as an onion service through
                   its own tor: no listener on the public address.

What is a jail's own is never taken from the host: its name, address and md unit are required in every entry, its
root and image default to /var/jails/NAME and /var/jails/NAME.img (today's /var/jails/tor and tor.img for a jail
named tor), so a host going from one jail to a list keeps its first jail's image where it is.

This module holds what an entry may say, the onion service's model and the checks across jails; the Settings
model (torjail.settings.model) builds each relay's own Settings from the host's and the entry's.
"""

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from torjail.settings.values import (
    AbsolutePath, Command, EnvName, ImageSize, JailAddress, JailName, MdUnit, Port, parse_size,
)

KINDS = ("relay", "onion-service")
MAX_RELAYS_PER_IPV4 = 8  # tor's directory authorities list at most 8 relays per IPv4 address
MAX_JAILS = 100  # one md unit each, 0-99

# Every jail's own settings: required in each entry, or derived from its name; never the host's.
REQUIRED = ("jail_name", "jail_ip", "md_unit")
JAIL_SETTINGS = {*REQUIRED, "jail_root", "image_path", "image_size", "geli_passphrase_env", "geli_passphrase_command"}
# A relay's settings an entry may set for itself; of these, OWN_RELAY_SETTINGS are never taken from the host.
RELAY_SETTINGS = JAIL_SETTINGS | {
    "relay_nickname", "relay_contact", "public_ipv6", "or_port", "dir_port", "metrics_port", "metrics_networks",
    "identity", "signing_key_lifetime_days", "exit_relay", "exit_policy", "exit_notice", "exit_resolvers",
    "accounting_max", "accounting_rule", "bandwidth_rate", "bandwidth_burst",
}
OWN_RELAY_SETTINGS = {*REQUIRED, "relay_nickname", "jail_root", "image_path", "public_ipv6", "metrics_port",
                      "metrics_networks"}
ONION_SETTINGS = JAIL_SETTINGS | {"onion_ports", "service_packages", "service_rc"}
PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # a pkg(8) package name, like nginx or py311-foo
RC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # an rc.d script's name, as rc.conf's NAME_enable spells it


def derived_paths(name):
    """Where a listed jail's root and image are unless its entry says: beside today's single jail's."""
    return {"jail_root": f"/var/jails/{name}", "image_path": f"/var/jails/{name}.img"}


def md_unit_swap_problems(md_unit, swap_file_size, swap_devices):
    """An image's md unit must be free of swap: the swap file's unit, or an md device listed as swap."""
    from torjail.tasks.swap import SWAP_FILE_UNIT

    problems = []
    if swap_file_size is not None and md_unit == SWAP_FILE_UNIT:
        problems.append(f"expected a unit other than {SWAP_FILE_UNIT}: the swap file (swap_file_size) is attached "
                        f"as md{SWAP_FILE_UNIT}")
    if swap_devices != "detect":
        own = re.compile(rf"/dev/md{md_unit}(?![0-9])")
        problems += [f"expected a unit other than {md_unit}: swap_devices lists {device} on md{md_unit}"
                     for device in swap_devices if own.match(device)]
    return problems


class JailLayout:
    """Names and devices every jail derives from its settings (a relay's Settings and an OnionService alike)."""

    @property
    def md_device(self):
        return f"md{self.md_unit}"

    @property
    def eli_device(self):
        return f"md{self.md_unit}.eli"

    @property
    def jail_conf_path(self):
        """The jail's own jail.conf(5) file, which every `jail -f` names."""
        return f"/etc/jail.conf.d/{self.jail_name}.conf"

    @property
    def image_bytes(self):
        return parse_size(self.image_size)


# What an onion-service jail takes from its host's settings, never from its entry: its host, the release its jail
# runs, the GELI settings its image is made with, the loopback it is addressed on, what the host logs, the age key
# its backup is encrypted to.
ONION_FROM_HOST = ("host_name", "secrets_dir", "age_recipient", "jail_release", "jail_release_sha256", "jail_arch",
                   "release_mirror", "pkg_branch", "geli_cipher", "geli_key_length", "geli_sector_size",
                   "jail_interface", "host_logs", "public_ipv4", "ext_if")


class OnionService(JailLayout, BaseModel):
    """An onion-service jail: its own image and address, the packages and rc.d services it runs, and the ports
    its tor publishes as an onion service (each to the same port on the jail's address). It shares with the
    relay jails what the vault and jail steps read (ONION_FROM_HOST); it is never a relay: no ORPort, no exit, no
    IPv6 address of its own, nothing of it on the public address."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    host_name: str
    secrets_dir: str
    age_recipient: str | None
    jail_release: str
    jail_release_sha256: str | None
    jail_arch: str
    release_mirror: str
    pkg_branch: str
    geli_cipher: str
    geli_key_length: int
    geli_sector_size: int
    jail_interface: str
    host_logs: list[str]
    public_ipv4: str
    ext_if: str
    exit_relay: Literal[False] = False
    exit_notice: Literal[False] = False
    public_ipv6: None = None

    kind: Literal["onion-service"]
    jail_name: JailName
    jail_ip: JailAddress
    md_unit: MdUnit
    jail_root: AbsolutePath
    image_path: AbsolutePath
    image_size: ImageSize
    geli_passphrase_env: EnvName
    geli_passphrase_command: Command | None = None
    onion_ports: list[Port]

    @field_validator("onion_ports")
    @classmethod
    def _onion_ports(cls, value):
        if not value:
            raise ValueError("expected at least one port the onion service publishes, like [80]")
        if len(set(value)) != len(value):
            raise ValueError(f"expected each port once, got {value!r}")
        return value

    service_packages: list[str] = []

    @field_validator("service_packages")
    @classmethod
    def _packages(cls, value):
        for name in value:
            if not PACKAGE.fullmatch(name):
                raise ValueError(f"expected pkg(8) package names like nginx, got {name!r}")
        return value

    service_rc: list[str] = []

    @field_validator("service_rc")
    @classmethod
    def _rc_names(cls, value):
        for name in value:
            if not RC_NAME.fullmatch(name) or name == "tor":
                raise ValueError(f"expected rc.d service names like nginx (tor is the jail's own), got {name!r}")
        return value

    @property
    def relay_name(self):
        """Its name in messages and prompts: HOST/JAIL."""
        return f"{self.host_name}/{self.jail_name}"

    @property
    def ipv6(self):
        return False

    @property
    def base_url(self):
        return f"{self.release_mirror}/{self.jail_arch}/{self.jail_release}"

    @property
    def jail_console_log(self):
        return "jail_console" in self.host_logs


def entry_problems(index, entry, host_settings):
    """What is wrong with the shape of one entry of `jails` before its settings are read: its kind, settings it may
    not set (`host_settings`: the names of every setting of a host), and the ones it must."""
    where = f"jails[{index}]"
    kind = entry.get("kind")
    if kind not in KINDS:
        return [(f"{where}.kind", f"expected one of {', '.join(map(repr, KINDS))}, got {kind!r}")]
    allowed = RELAY_SETTINGS if kind == "relay" else ONION_SETTINGS
    problems = []
    for name in sorted(set(entry) - allowed - {"kind"}):
        if name in RELAY_SETTINGS | ONION_SETTINGS:
            why = f"is not a setting of a jail of kind '{kind}'"
        elif name in host_settings:
            why = "is a setting of the whole host: set it beside jails, for every jail"
        else:
            why = "is not a torjail setting (a typo?); see README 'Several jails' for a jail's settings"
        problems.append((f"{where}.{name}", why))
    for name in (*REQUIRED, *(("relay_nickname",) if kind == "relay" else ())):
        if name not in entry:
            problems.append((f"{where}.{name}", "is required in every jail of the list"))
    return problems


def _distinct(jails, attribute, what, key=lambda value: value):
    """Every jail's `attribute` differs from the others' (None aside), compared as `key` reads it."""
    problems, seen = [], {}
    for index, jail in enumerate(jails):
        value = getattr(jail, attribute, None)
        if value is None:
            continue
        if key(value) in seen:
            problems.append((f"jails[{index}].{attribute}", f"expected {what} of its own, got {value!r} as "
                                                            f"jails[{seen[key(value)]}] has"))
        seen.setdefault(key(value), index)
    return problems


def _paths_apart(jails):
    """No jail's image or root is, or lies inside, another image or root of the host: its own root included
    for an image (the image holds the root), and every path of the other jails."""
    paths = [(index, name, getattr(jail, name)) for index, jail in enumerate(jails)
             for name in ("jail_root", "image_path")]
    problems = []
    for index, name, path in paths:
        for other, other_name, other_path in paths:
            if (other, other_name) == (index, name) or (other == index and name == "jail_root"):
                continue
            if path == other_path or path.startswith(other_path + "/"):
                owner = "its own" if other == index else f"jails[{other}]'s"
                problems.append((f"jails[{index}].{name}", f"expected a path apart from {owner} {other_name} "
                                                           f"({other_path}), got {path}"))
                break
    return problems


def _public_ports_apart(relays, sshd_port):
    """pf redirects each relay's ORPort, DirPort and MetricsPort on the one public address: one port, one use."""
    problems, taken = [], {sshd_port: "sshd_port"}
    for index, relay in relays:
        for name in ("or_port", "dir_port", "metrics_port"):
            port = getattr(relay, name)
            if not port:
                continue
            if port in taken:
                problems.append((f"jails[{index}].{name}", f"expected a port of its own on the public address, got "
                                                           f"{port} as {taken[port]} has"))
            taken.setdefault(port, f"jails[{index}].{name}")
    return problems


def across_jails(jails, host):
    """The checks across a host's jails (relay Settings and OnionService alike, in the list's order), with the
    host's Settings for what they share (sshd's port, swap, the family). A relay's Settings checked its own
    md unit against swap; an onion service's is checked here."""
    problems = []
    for index, jail in enumerate(jails):
        if isinstance(jail, OnionService):
            problems += [(f"jails[{index}].md_unit", message) for message in
                         md_unit_swap_problems(jail.md_unit, host.swap_file_size, host.swap_devices)]
    for attribute, what in (("jail_name", "a name"), ("jail_ip", "an address"), ("md_unit", "an md unit"),
                            ("public_ipv6", "an IPv6 address")):
        problems += _distinct(jails, attribute, what)
    problems += _distinct(jails, "relay_nickname", "a nickname", key=str.casefold)  # tor ignores case in them
    problems += _paths_apart(jails)
    relays = [(index, jail) for index, jail in enumerate(jails) if not isinstance(jail, OnionService)]
    if len(relays) > MAX_RELAYS_PER_IPV4:
        problems.append(("jails", f"expected at most {MAX_RELAYS_PER_IPV4} relays on the host's one public IPv4 "
                                  f"address (tor's directory authorities list no more), got {len(relays)}"))
    problems += _public_ports_apart(relays, host.sshd_port)
    if len(relays) > 1 and host.family is None:
        problems.append(("family", "is required for a host with several relays: tor asks that relays run by one "
                                   "operator declare each other as a family"))
    return problems
