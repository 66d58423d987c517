"""Whatever the settings loader accepts renders into files their checkers accept, and tor reads back as written.

Generated settings mix valid values with what breaks a file or a command: control characters, '#', a trailing
backslash, a trailing newline, digits of other scripts, %zones, netmasks, host bits, out-of-range numbers, ports
and masks. Every accepted set is rendered; every file goes through its checker (real tor --verify-config for
torrc, the pf grammar, jail.conf(5), rc.conf), and tor's own reading of torrc (--dump-config) must give back the
contact and the exit policy lines exactly. Derandomized, so CI runs the same examples every time.
"""

import codecs
import os
import subprocess
import tempfile
import pathlib

from hypothesis import HealthCheck, given, settings as run_settings, strategies as st

from torjail.checks import check_file
from torjail.checks.torrc import tor_binary
from torjail.render import render_all
from torjail.settings import SETTING_NAMES, TOR_BYTE_UNITS, SettingsError, build_settings

BASE = {"identity": "on-relay", "relay_nickname": "FuzzRelay", "relay_contact": "ops@example.org", "public_ipv4": "198.51.100.7"}

TRICKY = list("#\\\"' \t\n\r\0\x7f\u0085\u2028é١;{}$`")
TEXT = st.text(st.one_of(st.characters(), st.sampled_from(TRICKY)), max_size=24)


def maybe_newline(strategy):
    return st.tuples(strategy, st.sampled_from(["", "", "", "\n", " "])).map("".join)


ADDRESSES = st.sampled_from([
    "*", "*4", "*6", "private", "198.51.100.0/24", "198.51.100.7", "198.51.100.7/24", "0.0.0.0/0", "1.2.3.4/33",
    "[2001:db8::]/32", "[::]/0", "[::ffff:198.51.100.7]", "[2001:db8::1%vtnet0]", "2001:db8::/32",
    "10.0.0.0/255.0.0.0", "*/8", "01.2.3.4", "[198.51.100.7]",
])
PORTS = st.one_of(
    st.sampled_from(["*", "1-65535", "0", "65536", "70000", "443-80", "0443", "١٤٣", ""]),
    st.integers(1, 65535).map(str),
    st.tuples(st.integers(1, 65535), st.integers(1, 65535)).map(lambda pair: f"{pair[0]}-{pair[1]}"),
)
RULE = maybe_newline(st.builds(lambda action, address, ports: f"{action} {address}:{ports}",
                               st.sampled_from(["accept", "reject", "accept6", "reject6", "ACCEPT"]), ADDRESSES, PORTS))
ENDINGS = st.sampled_from([["reject *:*"], ["reject *4:*"], ["reject *4:*", "reject6 *:*"], ["reject *:*", "accept *:80"],
                           ["accept *:*"], []])
POLICY = st.tuples(st.lists(RULE, max_size=4), ENDINGS).map(lambda parts: parts[0] + parts[1])
AMOUNT = maybe_newline(st.builds(lambda number, unit: f"{number} {unit}", st.integers(0, 10**20),
                                 st.sampled_from([*TOR_BYTE_UNITS, "GB"])))
TRAFFIC = maybe_newline(st.builds(lambda number, unit: f"{number} {unit}",
                                  st.sampled_from(["0", "3", "1.5", "2", "20", "500", "0.0001", "1e3", "١"]),
                                  st.sampled_from(["TB", "GB", "TiB", "TBytes", "tb", "MB", "B"])))
NETWORK = st.one_of(
    st.sampled_from(["0.0.0.0/0", "::/0", "198.51.100.0/24", "198.51.100.7/24", "10.0.0.0/255.0.0.0",
                     "2001:db8::%vtnet0/48", "198.51.100.7", "2001:db8:9::/48", "10.0.0.0/08", "::ffff:1.2.3.0/120"]),
    st.ip_addresses().map(str),
)
RESOLVER = st.sampled_from(["198.51.100.53", "2001:db8::53", "8.8.8.8", "2606:4700:4700::1111", "::ffff:9.9.9.9",
                            "127.0.0.1", "198.51.100.53\n", "2001:db8::53%vtnet0", "resolver.example.org", ""])
PATH = maybe_newline(st.from_regex(r"(/[A-Za-z0-9._+ -]{1,8}){1,3}", fullmatch=True))

STRATEGIES = {
    "relay_nickname": st.one_of(st.from_regex(r"[A-Za-z0-9]{1,20}", fullmatch=True), TEXT),
    "relay_contact": st.one_of(TEXT, st.from_regex(r"[ -~]{1,30}", fullmatch=True)),
    "public_ipv4": st.one_of(st.ip_addresses(v=4).map(str), st.sampled_from(["203.0.113.10\n", "198.51.100"])),
    "public_ipv6": st.one_of(st.none(), st.ip_addresses(v=6).map(str), st.sampled_from(["2001:db8::7%vtnet0"])),
    "or_port": st.integers(-1, 70000),
    "dir_port": st.integers(-1, 70000),
    "identity": st.sampled_from(["offline-master", "on-relay", "offline"]),
    "signing_key_lifetime_days": st.integers(1, 366),
    "secrets_dir": st.sampled_from(["~/.local/share/torjail", "/var/tmp/torjail-secrets", "secrets",
                                    str(pathlib.Path(__file__).resolve().parent)]),
    "age_recipient": st.one_of(st.none(), st.sampled_from([
        "age19s9uupdwtthy8lqxy2uefcjzyrffx9wu0dmfxjec8dzjnehea38q7hxyad", "age1xyz", "AGE-SECRET-KEY-1X"])),
    "family": st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_./-]{0,34}", fullmatch=True),
                        st.sampled_from(["fleet\n", "../fleet", "fleet one"])),
    "exit_relay": st.booleans(),
    "exit_policy": POLICY,
    "exit_notice": st.booleans(),
    "exit_resolvers": st.lists(st.one_of(RESOLVER, st.ip_addresses().map(str)), max_size=3),
    "traffic_quota": st.one_of(st.none(), TRAFFIC),
    "traffic_quota_both_directions": st.booleans(),
    "traffic_reserve": st.one_of(st.none(), TRAFFIC),
    "accounting_max": st.one_of(st.none(), AMOUNT),
    "accounting_start": maybe_newline(st.from_regex(r"(day|week|month)( [0-9١]{1,2})? [0-9]{2}:[0-9]{2}",
                                                    fullmatch=True)),
    "accounting_rule": st.sampled_from([None, "sum", "max", "in", "out", "both"]),
    "bandwidth_rate": st.one_of(st.none(), AMOUNT),
    "bandwidth_burst": st.one_of(st.none(), AMOUNT),
    "jail_name": maybe_newline(st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)),
    "jail_interface": maybe_newline(st.from_regex(r"lo[0-9]{1,3}", fullmatch=True)),
    "jail_ip": st.one_of(st.ip_addresses(network="10.0.0.0/8").map(str), st.sampled_from(["192.168.7.2", "8.8.8.8"])),
    "jail_root": PATH,
    "jail_release": maybe_newline(st.from_regex(r"[0-9١]{1,3}\.[0-9]{1,2}-RELEASE", fullmatch=True)),
    "jail_release_sha256": st.one_of(st.none(), st.from_regex(r"[0-9a-fA-F]{63,65}\n?", fullmatch=True)),
    "jail_arch": st.sampled_from(["amd64", "arm64", "i386"]),
    "release_mirror": st.sampled_from(["https://download.freebsd.org/releases", "http://mirror.example:8080/pub/",
                                       "https://mirror.example/a b", "https://download.freebsd.org/releases\n"]),
    "pkg_branch": st.sampled_from(["quarterly", "latest"]),
    "image_path": PATH,
    "image_size": maybe_newline(st.from_regex(r"[0-9]{1,4}[MGTK]", fullmatch=True)),
    "md_unit": st.integers(-1, 100),
    "geli_cipher": st.sampled_from(["AES-XTS", "AES-CBC", "Camellia-CBC"]),
    "geli_key_length": st.sampled_from([128, 256, 512]),
    "geli_sector_size": st.sampled_from([512, 4096, 8192, 3000]),
    "geli_passphrase_env": maybe_newline(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)),
    "geli_passphrase_command": st.one_of(st.none(), st.lists(TEXT, max_size=3)),
    "swap_devices": st.one_of(st.just("detect"), st.lists(
        maybe_newline(st.from_regex(r"/dev/(ada0p[0-9]|md[0-9]{1,2}|vtbd0p3)(\.eli)?", fullmatch=True)), max_size=2)),
    "swap_file_size": st.one_of(st.none(), st.sampled_from(["2G", "512M", "2G\n"])),
    "ext_if": st.one_of(st.just("detect"), maybe_newline(st.from_regex(r"[a-z]{2,12}[0-9]{1,5}", fullmatch=True))),
    "sshd_port": st.integers(-1, 70000),
    "admin_networks": st.lists(NETWORK, max_size=3),
    "sshd_max_connections": st.integers(0, 1001),
    "sshd_connection_rate": maybe_newline(st.from_regex(r"[0-9١]{1,4}/[0-9]{1,4}", fullmatch=True)),
    "sshd_block_seconds": st.integers(59, 86401),
    "pf_rollback_seconds": st.integers(14, 901),
    "host_logs": st.lists(st.sampled_from(["pflog", "jail_console", "syslog"]), max_size=3),
    "metrics_port": st.one_of(st.none(), st.integers(-1, 70000), st.sampled_from([9001, 22, 9035])),
    "metrics_networks": st.lists(NETWORK, max_size=3),
}
JAIL_ENTRY = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.just("relay"), "jail_name": STRATEGIES["jail_name"], "jail_ip": STRATEGIES["jail_ip"],
         "md_unit": STRATEGIES["md_unit"], "relay_nickname": STRATEGIES["relay_nickname"]},
        optional={"or_port": STRATEGIES["or_port"], "dir_port": STRATEGIES["dir_port"],
                  "public_ipv6": STRATEGIES["public_ipv6"], "accounting_max": STRATEGIES["accounting_max"],
                  "exit_relay": STRATEGIES["exit_relay"], "image_path": PATH, "traffic_quota": TRAFFIC}),
    st.fixed_dictionaries(
        {"kind": st.just("onion-service"), "jail_name": STRATEGIES["jail_name"], "jail_ip": STRATEGIES["jail_ip"],
         "md_unit": STRATEGIES["md_unit"], "onion_ports": st.lists(st.integers(-1, 70000), max_size=3)},
        optional={"service_packages": st.lists(TEXT, max_size=2), "service_rc": st.lists(TEXT, max_size=2),
                  "relay_nickname": STRATEGIES["relay_nickname"]}),
    st.sampled_from([{}, {"kind": "bridge"}, "relay", {"kind": "relay"}]),
)
STRATEGIES["jails"] = st.one_of(st.none(), st.lists(JAIL_ENTRY, min_size=0, max_size=3))

OVERRIDES = st.lists(st.sampled_from(sorted(STRATEGIES)), min_size=1, max_size=4, unique=True).flatmap(
    lambda names: st.fixed_dictionaries({name: STRATEGIES[name] for name in names}))


def test_every_setting_is_fuzzed():
    assert sorted(STRATEGIES) == sorted(SETTING_NAMES)


def _tor_reading(torrc):
    """tor's own reading of a torrc (--dump-config short): {option: [values]} with quoted values decoded."""
    with tempfile.TemporaryDirectory(prefix="torjail-fuzz-") as tmp:
        path = os.path.join(tmp, "torrc")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(torrc)
        result = subprocess.run([tor_binary(), "--defaults-torrc", os.devnull, "-f", path, "--dump-config", "short",
                                 "--hush"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    reading = {}
    for line in result.stdout.splitlines():
        option, _, value = line.partition(" ")
        if value.startswith('"'):
            value = codecs.escape_decode(value[1:-1].encode("ascii"))[0].decode("utf-8")
        reading.setdefault(option, []).append(value)
    return reading


def _assert_renders_valid_files(settings):
    for generated in render_all(settings):
        assert check_file(generated) == [], (generated.path, generated.content)
        if generated.kind == "torrc":
            reading = _tor_reading(generated.content)
            assert reading["ContactInfo"] == [settings.relay_contact]
            assert reading["Nickname"] == [settings.relay_nickname]
            if settings.exit_relay and settings.exit_policy:
                assert reading["ExitPolicy"] == settings.exit_policy


def _loaded_or_refused(overrides, outcomes):
    """The settings the loader makes of BASE plus `overrides`, or None (counted) when it refuses them, naming the
    setting."""
    try:
        return build_settings("fuzz", {**BASE, **overrides})
    except SettingsError as error:
        assert all(problem.startswith("fuzz: setting '") for problem in error.problems), error.problems
        outcomes["refused"] += 1
        return None


def test_whatever_the_loader_accepts_renders_into_files_their_checkers_accept():
    outcomes = {"accepted": 0, "refused": 0}

    @run_settings(max_examples=150, derandomize=True, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(OVERRIDES)
    def loader_and_checkers_agree(overrides):
        settings = _loaded_or_refused(overrides, outcomes)
        if settings is None:
            return
        outcomes["accepted"] += 1
        for relay in settings.relays:
            _assert_renders_valid_files(relay)

    loader_and_checkers_agree()
    assert outcomes["accepted"] >= 30 and outcomes["refused"] >= 30, outcomes


GOOD_RULE = st.sampled_from(["accept *:443", "accept *4:80-81", "reject 198.51.100.0/24:*", "reject private:*",
                             "accept6 [2001:db8::]/32:22", "accept *6:443", "reject *:25"])
GOOD_POLICY = st.tuples(st.lists(GOOD_RULE, max_size=4), ENDINGS).map(lambda parts: parts[0] + parts[1])
EXIT_OVERRIDES = st.fixed_dictionaries({
    "exit_relay": st.just(True),
    "exit_policy": st.one_of(POLICY, GOOD_POLICY),
    "public_ipv6": st.one_of(st.none(), st.sampled_from(["2001:db8::7", "2001:db8:1::10"]),
                             STRATEGIES["public_ipv6"]),
    "exit_notice": st.booleans(),
    "exit_resolvers": st.one_of(st.just([]), st.just(["198.51.100.53", "2001:db8::53"]), STRATEGIES["exit_resolvers"]),
})


def test_whatever_exit_policy_the_loader_accepts_tor_reads_back_as_written():
    """Exit relays, IPv4 only and with IPv6: the policies the loader accepts are the ones tor runs."""
    outcomes = {"accepted": 0, "accepted_ipv6": 0, "refused": 0}

    @run_settings(max_examples=120, derandomize=True, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(EXIT_OVERRIDES)
    def policies_agree(overrides):
        settings = _loaded_or_refused(overrides, outcomes)
        if settings is None:
            return
        if settings.exit_policy:
            outcomes["accepted"] += 1
            outcomes["accepted_ipv6"] += settings.ipv6
        _assert_renders_valid_files(settings)

    policies_agree()
    assert outcomes["accepted"] >= 10 and outcomes["accepted_ipv6"] >= 3 and outcomes["refused"] >= 30, outcomes
