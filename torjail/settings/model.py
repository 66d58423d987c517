"""The Settings model: every setting torjail reads, its type, its default and its check.

A setting is checked once, here, before anything reaches a server; torjail.settings.loading builds a Settings from
a host's data and torjail.settings.errors words the problems.
"""

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator,
)

from torjail.budget import BudgetError, Plan, make_plan, parse_traffic, tor_amount
from torjail.exitpolicy import parse_rule, policy_problems
from torjail.settings import jails as listed
from torjail.settings.errors import setting_problems
from torjail.settings.values import (
    AbsolutePath, Command, EnvName, ImageSize, JailAddress, JailName, MdUnit, Port, expect_interface_name,
    expect_network, expect_port, expect_torrc_value, parse_size, parse_tor_amount,
)

# Networks a relay's public address can never be in.
NOT_PUBLIC_V4 = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
)]

# Every pattern is applied with fullmatch and spells digits [0-9] (see torjail.settings.values).
NICKNAME = re.compile(r"[A-Za-z0-9]{1,19}")
RELEASE = re.compile(r"([1-9][0-9]*)\.(0|[1-9][0-9]*)-RELEASE")
SHA256 = re.compile(r"[0-9a-f]{64}")
ACCOUNTING_START = re.compile(r"(day|week|month)(?: ([0-9]{1,2}))? ([0-9]{2}):([0-9]{2})")
RATE = re.compile(r"([1-9][0-9]{0,8})/([1-9][0-9]{0,8})")
MIRROR = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?")
SWAP_DEVICE = re.compile(r"/dev/[A-Za-z0-9/._-]+")
ADDRESS = re.compile(r"[0-9A-Fa-f:.]+")  # no %zone: a forwarder is not link-local
# The relay guide warns exits off these: each sees a large share of all exit lookups.
BIG_PUBLIC_RESOLVERS = {ipaddress.ip_address(address): owner for owner, addresses in {
    "Google": ("8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844"),
    "Cloudflare": ("1.1.1.1", "1.0.0.1", "2606:4700:4700::1111", "2606:4700:4700::1001"),
    "Quad9": ("9.9.9.9", "149.112.112.112", "2620:fe::fe", "2620:fe::9"),
    "OpenDNS": ("208.67.222.222", "208.67.220.220", "2620:119:35::35", "2620:119:53::53"),
}.items() for address in addresses}
# tor's limits for RelayBandwidthRate/Burst (0.4.9): at least 75 KBytes for a relay, at most 2 GBytes.
MIN_RELAY_BANDWIDTH = 76800
MAX_RELAY_BANDWIDTH = 2**31
MAX_ACCOUNTING_BYTES = 2**63 - 1
# tor refuses a SigningKeyLifetime under twice TestingSigningKeySlop (1 day) with "SigningKeyLifetime is too
# short"; a signing key stolen from a seized relay speaks for it until it expires, so a year at most.
MIN_SIGNING_KEY_DAYS = 2
MAX_SIGNING_KEY_DAYS = 365
AGE_RECIPIENT = re.compile(r"age1[02-9ac-hj-np-z]{58}")  # bech32: 'age1' and 58 characters of its alphabet
FAMILY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
CHECKOUT = Path(__file__).resolve().parents[2]


def _repositories():
    """Directories secrets must stay out of: this checkout, and the current directory when it holds an inventory
    (pyinfra runs from the repository that holds inventory.py)."""
    roots = [CHECKOUT]
    if (Path.cwd() / "inventory.py").exists():
        roots.append(Path.cwd().resolve())
    return roots


class Settings(listed.JailLayout, BaseModel):
    """Everything torjail needs to know about one relay host, in the order the README documents it: the host and
    its one relay jail, or, when it lists its `jails`, the host's settings that every jail takes as its defaults
    (each listed relay is a Settings of its own, see `relays`).

    Each setting is followed by its own check; the checks across settings come after the last setting, then the
    values tasks and templates derive from the settings."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    _jail_views: list = PrivateAttr(default_factory=list)  # with `jails`: each jail's own settings, as listed
    _listed: bool = PrivateAttr(default=False)  # a relay of a host's `jails`, made by _relay

    host_name: str

    # Relay identity
    relay_nickname: str | None = None  # required, unless the host lists its jails (each relay has its own)

    @field_validator("relay_nickname")
    @classmethod
    def _nickname(cls, value):
        if value is not None and not NICKNAME.fullmatch(value):
            raise ValueError(f"expected 1-19 letters or digits (tor's rule), got {value!r}")
        return value

    relay_contact: str

    @field_validator("relay_contact")
    @classmethod
    def _contact(cls, value):
        if not value.strip():
            raise ValueError("expected a non-empty single line (an e-mail address or ContactInfo string)")
        expect_torrc_value(value)
        return value

    public_ipv4: str

    @field_validator("public_ipv4")
    @classmethod
    def _public_ipv4(cls, value):
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"expected the server's public IPv4 address like 203.0.113.10, got {value!r}") from None
        if any(address in net for net in NOT_PUBLIC_V4):
            raise ValueError(f"expected a public IPv4 address, got {value} (private, loopback or reserved)")
        return value

    public_ipv6: str | None = None

    @field_validator("public_ipv6")
    @classmethod
    def _public_ipv6(cls, value):
        if value is None:
            return value
        try:
            address = ipaddress.IPv6Address(value)
        except ValueError:
            raise ValueError(f"expected an IPv6 address like 2001:db8::10, or None, got {value!r}") from None
        if address.scope_id is not None:
            raise ValueError(f"expected a global IPv6 address without a %zone suffix, got {value!r}")
        if address.is_link_local or address.is_loopback or address.is_multicast or address.is_unspecified \
                or address in ipaddress.ip_network("fc00::/7"):
            raise ValueError(f"expected a global IPv6 address, got {value} (link-local, unique-local or reserved)")
        return str(address)

    or_port: Port = 9001
    dir_port: int = 9030

    @field_validator("dir_port")
    @classmethod
    def _dir_port(cls, value):
        return expect_port(value, allow_zero=True)

    # Identity keys and the secrets directory
    identity: Literal["offline-master", "on-relay"] = "offline-master"
    signing_key_lifetime_days: int = 30

    @field_validator("signing_key_lifetime_days")
    @classmethod
    def _signing_key_lifetime(cls, value):
        if not MIN_SIGNING_KEY_DAYS <= value <= MAX_SIGNING_KEY_DAYS:
            raise ValueError(f"expected {MIN_SIGNING_KEY_DAYS}-{MAX_SIGNING_KEY_DAYS} days (tor refuses less than "
                             f"2 days; a stolen signing key works until it expires), got {value!r}")
        return value

    secrets_dir: str = Field("~/.local/share/torjail", validate_default=True)  # expanded on this machine

    @field_validator("secrets_dir")
    @classmethod
    def _secrets_dir(cls, value):
        if not value or "\0" in value:
            raise ValueError("expected a directory path like ~/.local/share/torjail")
        path = Path(os.path.expanduser(value))
        if not path.is_absolute():
            raise ValueError(f"expected an absolute path (or one starting with ~), got {value!r}")
        resolved = path.resolve()
        for repository in _repositories():
            if resolved.is_relative_to(repository):
                raise ValueError(f"expected a directory outside the repository {repository} (secrets never go "
                                 f"into a checkout that may be copied or pushed), got {value!r}")
        return str(resolved)

    age_recipient: str | None = None

    @field_validator("age_recipient")
    @classmethod
    def _age_recipient(cls, value):
        if value is not None and not AGE_RECIPIENT.fullmatch(value):
            raise ValueError(f"expected an age public key like age1... (from age-keygen -y), got {value!r}")
        return value

    family: str | None = None  # relays of the inventory with the same name share a family key

    @field_validator("family")
    @classmethod
    def _family(cls, value):
        if value is not None and not FAMILY_NAME.fullmatch(value):
            raise ValueError("expected a name of 1-32 letters, digits, '-' or '_' (it names the family's key "
                             f"files), got {value!r}")
        return value

    # Exit or not
    exit_relay: bool = False
    exit_policy: list[str] = []

    @field_validator("exit_policy")
    @classmethod
    def _exit_policy(cls, value):
        for line in value:
            parse_rule(line)
        return value

    exit_notice: bool = False
    exit_resolvers: list[str] = []  # the jail's local-unbound forwards to these; []: it resolves recursively

    @field_validator("exit_resolvers")
    @classmethod
    def _exit_resolvers(cls, value):
        for address in value:
            if not isinstance(address, str) or not ADDRESS.fullmatch(address):
                raise ValueError(f"expected IP addresses of resolvers like 198.51.100.53 or 2001:db8::53, got "
                                 f"{address!r}")
            try:
                parsed = ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"expected IP addresses of resolvers like 198.51.100.53 or 2001:db8::53, got "
                                 f"{address!r}") from None
            parsed = getattr(parsed, "ipv4_mapped", None) or parsed
            if parsed in BIG_PUBLIC_RESOLVERS:
                raise ValueError(f"{address} is {BIG_PUBLIC_RESOLVERS[parsed]}'s public resolver: the Tor relay "
                                 "guide warns exits off the big public resolvers (they see a large share of Tor's "
                                 "exit lookups); use [] (recursive) or your provider's or your own resolver")
            if parsed.is_loopback or parsed.is_unspecified or parsed.is_multicast:
                raise ValueError(f"expected a resolver reachable from the jail (not loopback, unspecified or "
                                 f"multicast), got {address!r}")
        if len(set(value)) != len(value):
            raise ValueError(f"expected each resolver once, got {value!r}")
        return value

    # Traffic: the provider's quota, accounting and bandwidth
    traffic_quota: str | None = None

    @field_validator("traffic_quota")
    @classmethod
    def _traffic_quota(cls, value):
        if value is not None and parse_traffic(value) == 0:
            raise ValueError(f"expected a quota above zero, got {value!r}")
        return value

    traffic_quota_both_directions: bool = True
    traffic_reserve: str | None = None

    @field_validator("traffic_reserve")
    @classmethod
    def _traffic_reserve(cls, value):
        if value is not None:
            parse_traffic(value)
        return value

    accounting_max: str | None = None

    @field_validator("accounting_max")
    @classmethod
    def _accounting_max(cls, value):
        if value is not None and parse_tor_amount(value) > MAX_ACCOUNTING_BYTES:
            raise ValueError(f"expected at most 2^63-1 bytes (what tor counts), got {value!r}")
        return value

    accounting_start: str = "month 1 00:00"

    @field_validator("accounting_start")
    @classmethod
    def _accounting_start(cls, value):
        match = ACCOUNTING_START.fullmatch(value)
        expected = "'day HH:MM', 'week D HH:MM' (D 1-7) or 'month D HH:MM' (D 1-28)"
        if not match:
            raise ValueError(f"expected {expected}, got {value!r}")
        period, day, hour, minute = match.groups()
        day_range = {"day": None, "week": (1, 7), "month": (1, 28)}[period]
        if (day is None) != (day_range is None) or (day_range and not day_range[0] <= int(day) <= day_range[1]):
            raise ValueError(f"expected {expected}, got {value!r}")
        if int(hour) > 23 or int(minute) > 59:
            raise ValueError(f"expected a time of day HH:MM (00:00-23:59), got {value!r}")
        return value

    accounting_rule: Literal["sum", "max", "in", "out"] | None = None
    bandwidth_rate: str | None = None
    bandwidth_burst: str | None = None

    @field_validator("bandwidth_rate", "bandwidth_burst")
    @classmethod
    def _bandwidth(cls, value):
        if value is not None and not MIN_RELAY_BANDWIDTH <= parse_tor_amount(value) <= MAX_RELAY_BANDWIDTH:
            raise ValueError(f"expected 75 KBytes to 2 GBytes per second (tor's range for a relay), got {value!r}")
        return value

    # Jail
    jail_name: JailName = "tor"
    jail_interface: str = "lo1"

    @field_validator("jail_interface")
    @classmethod
    def _jail_interface(cls, value):
        if not re.fullmatch(r"lo[1-9][0-9]{0,12}", value):
            raise ValueError(f"expected a cloned loopback interface like lo1 (not lo0), got {value!r}")
        return value

    jail_ip: JailAddress = "10.0.0.1"
    jail_root: AbsolutePath = "/var/jails/tor"
    jail_release: str = "14.3-RELEASE"

    @field_validator("jail_release")
    @classmethod
    def _release(cls, value):
        match = RELEASE.fullmatch(value)
        if not match or int(match.group(1)) < 14:
            raise ValueError(f"expected a FreeBSD release 14.0 or later like 14.3-RELEASE, got {value!r}")
        return value

    jail_release_sha256: str | None = None  # required by a deploy: pinned by the operator, not by the mirror

    @field_validator("jail_release_sha256")
    @classmethod
    def _release_sha256(cls, value):
        if value is not None and not SHA256.fullmatch(value):
            raise ValueError("expected the SHA256 of the release's base.txz, 64 lowercase hex digits as the "
                             f"release's MANIFEST lists it, got {value!r}")
        return value

    jail_arch: Literal["amd64", "arm64"] = "amd64"
    release_mirror: str = "https://download.freebsd.org/releases"

    @field_validator("release_mirror")
    @classmethod
    def _mirror(cls, value):
        if not MIRROR.fullmatch(value):
            raise ValueError("expected an https URL like https://download.freebsd.org/releases (fetch checks the "
                             f"mirror's certificate), got {value!r}")
        return value.rstrip("/")

    pkg_branch: Literal["quarterly", "latest"] = "quarterly"

    # Several jails (torjail.settings.jails): None, one relay jail from the settings above and below
    jails: list[dict[str, Any]] | None = None

    @field_validator("jails")
    @classmethod
    def _jails(cls, value):
        if value is not None and not 1 <= len(value) <= listed.MAX_JAILS:
            raise ValueError(f"expected None (one relay jail from the host's settings) or a list of 1 to "
                             f"{listed.MAX_JAILS} jails (one md unit each), got {len(value)}")
        return value

    # Encrypted image (the vault)
    image_path: AbsolutePath = "/var/jails/tor.img"
    image_size: ImageSize = "8G"
    md_unit: MdUnit = 10
    geli_cipher: Literal["AES-XTS", "AES-CBC", "Camellia-CBC"] = "AES-XTS"
    geli_key_length: Literal[128, 256] = 256
    geli_sector_size: Literal[512, 1024, 2048, 4096, 8192] = 4096
    geli_passphrase_env: EnvName = "TORJAIL_GELI_PASSPHRASE"
    geli_passphrase_command: Command | None = None

    # Swap
    swap_devices: Literal["detect"] | list[str] = "detect"

    @field_validator("swap_devices")
    @classmethod
    def _swap_devices(cls, value):
        if value != "detect":
            for device in value:
                if not SWAP_DEVICE.fullmatch(device) or device.endswith(".eli"):
                    raise ValueError("expected 'detect' or a list of plain swap devices like /dev/ada0p3, got "
                                     f"{device!r}")
        return value

    swap_file_size: str | None = None

    @field_validator("swap_file_size")
    @classmethod
    def _swap_file_size(cls, value):
        if value is not None:
            parse_size(value)
        return value

    # Firewall
    ext_if: str = "detect"  # preflight resolves "detect" to the server's interface (with_ext_if)

    @field_validator("ext_if")
    @classmethod
    def _ext_if(cls, value):
        if value != "detect":
            expect_interface_name(value)
        return value

    sshd_port: Port = 22
    admin_networks: list[str] = ["0.0.0.0/0", "::/0"]

    @field_validator("admin_networks")
    @classmethod
    def _admin_networks(cls, value):
        if not value:
            raise ValueError("expected at least one network allowed to reach sshd, like 198.51.100.0/24")
        for network in value:
            expect_network(network)
        return value

    sshd_max_connections: int = 10

    @field_validator("sshd_max_connections")
    @classmethod
    def _max_connections(cls, value):
        if not 1 <= value <= 1000:
            raise ValueError(f"expected a number of simultaneous connections 1-1000, got {value!r}")
        return value

    sshd_connection_rate: str = "15/60"

    @field_validator("sshd_connection_rate")
    @classmethod
    def _rate(cls, value):
        if not RATE.fullmatch(value):
            raise ValueError(f"expected connections/seconds like 15/60, got {value!r}")
        return value

    sshd_block_seconds: int = 3600

    @field_validator("sshd_block_seconds")
    @classmethod
    def _block_seconds(cls, value):
        if not 60 <= value <= 86400:
            raise ValueError(f"expected 60-86400 seconds an address stays in <bruteforce>, got {value!r}")
        return value

    pf_rollback_seconds: int = 90

    @field_validator("pf_rollback_seconds")
    @classmethod
    def _rollback(cls, value):
        if not 15 <= value <= 900:
            raise ValueError(f"expected 15-900 seconds before a firewall change rolls back, got {value!r}")
        return value

    host_logs: list[Literal["pflog", "jail_console"]] = ["pflog", "jail_console"]
    metrics_port: int | None = None  # tor's MetricsPort (Prometheus), on the jail address behind pf; None: off

    @field_validator("metrics_port")
    @classmethod
    def _metrics_port(cls, value):
        if value is not None and not 1 <= value <= 65535:
            raise ValueError(f"expected a TCP port 1-65535 or None (no MetricsPort), got {value!r}")
        return value

    metrics_networks: list[str] = []  # IPv4 networks allowed to reach it

    @field_validator("metrics_networks")
    @classmethod
    def _metrics_networks(cls, value):
        for network in value:
            expect_network(network)
            if ":" in network:
                raise ValueError(f"expected IPv4 networks (the MetricsPort is on the jail's IPv4 address), got "
                                 f"{network!r}")
            if network.endswith("/0"):
                raise ValueError("expected networks narrower than the world: tor's metrics tell about the relay's "
                                 "traffic and are for your own monitoring only, got '0.0.0.0/0'")
        return value

    # Checks across settings: each returns its problems as (setting, message); all of them run, so one attempt
    # reports every problem of a host.

    @model_validator(mode="after")
    def _settings_agree(self):
        if self.jails is not None:
            problems = self._jails_agree()
        else:
            problems = [problem for check in (
                self._nickname_given, self._ports_differ, self._metrics_port_and_networks_together,
                self._jail_ip_not_public, self._exit_notice_on_an_exit_with_dir_port, self._exit_resolvers_on_an_exit,
                self._exit_policy_of_an_exit, self._burst_at_least_rate, self._md_unit_free_of_swap,
                self._traffic_fits_quota, self._age_recipient_for_offline_keys, self._image_outside_jail_root,
            ) for problem in check()]
        if problems:
            raise ValueError(problems)
        return self

    def _nickname_given(self):
        if self.relay_nickname is None:
            return [("relay_nickname", "is required and has no default; set it in inventory.py or group_data (or "
                                       "list the host's jails, each relay with its own)")]
        return []

    def _ports_differ(self):
        """ORPort, DirPort, sshd and MetricsPort each need a port of their own (0 and None are off)."""
        problems, seen = [], {}
        ports = {"or_port": self.or_port, "dir_port": self.dir_port, "sshd_port": self.sshd_port,
                 "metrics_port": self.metrics_port}
        for name, port in ports.items():
            if port and port in seen:
                problems.append((name, f"expected a port different from {seen[port]} ({port})"))
            seen.setdefault(port, name)
        return problems

    def _metrics_port_and_networks_together(self):
        """A MetricsPort nobody may reach, or networks allowed to reach no MetricsPort, is a mistake."""
        problems = []
        if self.metrics_port and not self.metrics_networks:
            problems.append(("metrics_networks", "expected at least one network allowed to reach metrics_port, "
                                                 "like 198.51.100.0/24"))
        if self.metrics_networks and not self.metrics_port:
            problems.append(("metrics_port", "expected a port: metrics_networks is set but no MetricsPort"))
        return problems

    def _jail_ip_not_public(self):
        """pf redirects public_ipv4 to jail_ip: the two must differ."""
        if self.jail_ip == self.public_ipv4:
            return [("jail_ip", "expected a private address apart from the public network")]
        return []

    def _exit_notice_on_an_exit_with_dir_port(self):
        """The exit notice page is for exits, and served on the DirPort."""
        problems = []
        if self.exit_notice and not self.exit_relay:
            problems.append(("exit_notice", "expected False unless exit_relay is True (the notice is for exits)"))
        if self.exit_notice and not self.dir_port:
            problems.append(("exit_notice", "expected a dir_port: the notice page is served on the DirPort"))
        return problems

    def _exit_resolvers_on_an_exit(self):
        """Only an exit runs its own resolver in the jail."""
        if self.exit_resolvers and not self.exit_relay:
            return [("exit_resolvers", "expected [] unless exit_relay is True (the jail's own resolver is "
                                       "for exits)")]
        return []

    def _exit_policy_of_an_exit(self):
        """An exit policy is for exits, and must hold together as a whole (torjail.exitpolicy)."""
        if not self.exit_policy:
            return []
        if not self.exit_relay:
            return [("exit_policy", "expected [] unless exit_relay is True")]
        return [("exit_policy", problem) for problem in policy_problems(self.exit_policy, self.ipv6)]

    def _burst_at_least_rate(self):
        """A burst comes with a rate and is at least that rate (tor refuses a RelayBandwidthBurst below the rate)."""
        if self.bandwidth_burst and not self.bandwidth_rate:
            return [("bandwidth_burst", "expected bandwidth_rate to be set as well")]
        if self.bandwidth_burst and parse_tor_amount(self.bandwidth_burst) < parse_tor_amount(self.bandwidth_rate):
            return [("bandwidth_burst", f"expected at least bandwidth_rate ({self.bandwidth_rate})")]
        return []

    def _md_unit_free_of_swap(self):
        """The image's md unit must be free of swap: the swap file's unit, or an md device listed as swap."""
        return [("md_unit", message)
                for message in listed.md_unit_swap_problems(self.md_unit, self.swap_file_size, self.swap_devices)]

    def _traffic_fits_quota(self):
        """The quota's plan, with the explicit accounting settings in it, must fit the quota (torjail.budget)."""
        if self.traffic_quota is None:
            if self.traffic_reserve is not None:
                return [("traffic_reserve", "expected traffic_quota to be set as well")]
            if not self.traffic_quota_both_directions:
                return [("traffic_quota_both_directions", "expected True (the default) unless traffic_quota is set")]
            return []
        try:
            self._plan()
        except BudgetError as error:
            return [(error.setting, str(error))]
        return []

    def _age_recipient_for_offline_keys(self):
        """Keys kept on this machine (an offline master key, a family key) are kept only encrypted to age_recipient."""
        problems = []
        if self.identity == "offline-master" and self.age_recipient is None:
            problems.append(("age_recipient", "is required with identity 'offline-master': the master key is kept "
                                              "in secrets_dir only encrypted to this age public key"))
        if self.family is not None and self.age_recipient is None:
            problems.append(("age_recipient", "is required with a family: the family key is kept in secrets_dir "
                                              "only encrypted to this age public key"))
        return problems

    def _image_outside_jail_root(self):
        """The image holds the jail root: it cannot live inside it."""
        if self.image_path.startswith(self.jail_root.rstrip("/") + "/"):
            return [("image_path", f"expected a path outside jail_root ({self.jail_root}): "
                                   "the image holds the jail root")]
        return []

    def _jails_agree(self):
        """Each listed jail's own settings (a relay's Settings made from the host's and its entry's, or an
        OnionService), then the checks across them (torjail.settings.jails); problems name the entry."""
        views, problems = [], self._own_settings_left_at_the_host()
        relays = sum(1 for entry in self.jails if entry.get("kind") == "relay")
        for index, entry in enumerate(self.jails):
            shape = listed.entry_problems(index, entry, type(self).model_fields)
            if shape:
                problems += shape
                continue
            try:
                views.append(self._relay(entry, relays) if entry["kind"] == "relay" else self._onion_service(entry))
            except ValidationError as error:
                problems += [(f"jails[{index}].{name}" if name in entry else f"{name} (for jails[{index}])", message)
                             for name, message in setting_problems(error)]
        if not problems:
            problems = listed.across_jails(views, self)
        self._jail_views = views
        return problems

    def _own_settings_left_at_the_host(self):
        """A jail's own setting given for a host with jails would go unused (a moved image_path, say, would leave
        the listed jail with a new, empty vault): it belongs in the entry."""
        return [(name, "is each listed jail's own: with jails, set it in the jail's entry (here it would go unused)")
                for name in sorted(listed.OWN_RELAY_SETTINGS)
                if getattr(self, name) != type(self).model_fields[name].default]

    def _host_values(self, leave_out):
        return {name: getattr(self, name) for name in type(self).model_fields
                if name not in leave_out and name != "jails"}

    def _relay(self, entry, relays):
        """A listed relay's Settings: the host's, less what is each jail's own, with the entry's over them and an
        even share of the host's traffic quota and reserve."""
        values = {**self._host_values(listed.OWN_RELAY_SETTINGS), **listed.derived_paths(entry["jail_name"])}
        if self.traffic_quota is not None:
            values["traffic_quota"] = f"{parse_traffic(self.traffic_quota) // relays} B"
            if self.traffic_reserve is not None:
                values["traffic_reserve"] = f"{-(-parse_traffic(self.traffic_reserve) // relays)} B"  # rounded up
        values.update({name: value for name, value in entry.items() if name != "kind"})
        relay = Settings(**values)
        relay._listed = True
        return relay

    def _onion_service(self, entry):
        values = {name: getattr(self, name) for name in ("image_size", "geli_passphrase_env",
                                                          "geli_passphrase_command", *listed.ONION_FROM_HOST)}
        return listed.OnionService(**{**values, **listed.derived_paths(entry["jail_name"]), **entry})

    # Values derived from the settings, for tasks and templates.

    @property
    def jail_settings(self):
        """Every jail of the host in the list's order: a relay's own Settings or an OnionService; the host itself,
        as its one relay, when it lists no jails."""
        return [self] if self.jails is None else list(self._jail_views)

    @property
    def relays(self):
        """The Settings of each relay of the host."""
        return [jail for jail in self.jail_settings if isinstance(jail, Settings)]

    @property
    def kind(self):
        """What this jail is, as a host's `jails` names it (an OnionService's is "onion-service")."""
        return "relay"

    @property
    def relay_name(self):
        """The relay's name in secrets_dir, backups and messages: the host's name for its flat relay and for a
        listed relay named like the flat default jail (tor), so that a host going from one relay to a list keeps
        its relay's keys and records; HOST/JAIL for every other listed relay."""
        if self._listed and self.jail_name != type(self).model_fields["jail_name"].default:
            return f"{self.host_name}/{self.jail_name}"
        return self.host_name

    @property
    def onion_services(self):
        return [jail for jail in self.jail_settings if isinstance(jail, listed.OnionService)]

    def _plan(self):
        def amount(value):
            return None if value is None else parse_tor_amount(value)
        return make_plan(parse_traffic(self.traffic_quota), parse_traffic(self.traffic_reserve or "0 B"),
                         self.accounting_start, self.traffic_quota_both_directions,
                         amount(self.accounting_max), self.accounting_rule,
                         amount(self.bandwidth_rate), amount(self.bandwidth_burst))

    @property
    def plan(self) -> Plan | None:
        """The traffic plan of this relay, None without a traffic_quota."""
        return None if self.traffic_quota is None else self._plan()

    @property
    def torrc_traffic(self):
        """AccountingMax, AccountingStart, AccountingRule, RelayBandwidthRate and RelayBandwidthBurst as torrc gets
        them (None: not written): from the plan with a quota, else the settings as they are."""
        plan = self.plan
        if plan is None:
            return {"AccountingMax": self.accounting_max, "AccountingStart": self.accounting_start,
                    "AccountingRule": self.accounting_rule or "sum", "RelayBandwidthRate": self.bandwidth_rate,
                    "RelayBandwidthBurst": self.bandwidth_burst}
        return {"AccountingMax": tor_amount(plan.accounting_max), "AccountingStart": plan.accounting_start,
                "AccountingRule": plan.accounting_rule, "RelayBandwidthRate": tor_amount(plan.rate),
                "RelayBandwidthBurst": tor_amount(plan.burst)}

    @property
    def offline_master_key(self):
        return self.identity == "offline-master"

    @property
    def ipv6(self):
        return self.public_ipv6 is not None

    @property
    def accounting(self):
        return self.accounting_max is not None or self.traffic_quota is not None

    @property
    def pflog(self):
        """pf logs blocked packets to pflogd's /var/log/pflog on the host's clear disk."""
        return "pflog" in self.host_logs

    @property
    def jail_console_log(self):
        """jail(8) keeps what the jail's rc prints in /var/log/jail_NAME_console.log on the host's clear disk."""
        return "jail_console" in self.host_logs

    @property
    def base_url(self):
        return f"{self.release_mirror}/{self.jail_arch}/{self.jail_release}"

    def with_ext_if(self, interface):
        """These settings with ext_if set to an interface name: what "detect" stands for on the server (the deploy's
        preflight), or the interface a preview is rendered with."""
        copy = self.model_copy(update={"ext_if": interface})
        copy._listed = self._listed
        copy._jail_views = [view.with_ext_if(interface) if isinstance(view, Settings) else
                            view.model_copy(update={"ext_if": interface}) for view in self._jail_views]
        return copy

    @property
    def sshd_rate_parts(self):
        connections, seconds = RATE.fullmatch(self.sshd_connection_rate).groups()
        return int(connections), int(seconds)



SETTING_NAMES = [name for name in Settings.model_fields if name != "host_name"]
