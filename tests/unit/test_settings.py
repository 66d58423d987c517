"""Settings: bad input gives one clear error naming the host, the setting and what is expected."""

import ast
from pathlib import Path

import pytest

from torjail.settings import SETTING_NAMES, Settings, SettingsError, build_settings

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "identity": "on-relay",
    "relay_nickname": "GoodRelay",
    "relay_contact": "ops@example.org",
    "public_ipv4": "203.0.113.10",
}

BAD_INPUTS = [
    # (overrides, setting named in the error, fragment of what is expected)
    ({"relay_nickname": "bad name"}, "relay_nickname", "1-19 letters or digits"),
    ({"relay_nickname": "A" * 20}, "relay_nickname", "1-19 letters or digits"),
    ({"relay_nickname": ""}, "relay_nickname", "1-19 letters or digits"),
    ({"relay_nickname": "GoodRelay\n"}, "relay_nickname", "1-19 letters or digits"),
    ({"relay_nickname": "Relay١"}, "relay_nickname", "1-19 letters or digits"),
    ({"relay_contact": "  "}, "relay_contact", "non-empty single line"),
    ({"relay_contact": "a\nb"}, "relay_contact", "control character U+000A"),
    ({"relay_contact": "ops@example.org\n"}, "relay_contact", "control character U+000A"),
    ({"relay_contact": "ops\0@example.org"}, "relay_contact", "control character U+0000"),
    ({"relay_contact": "ops\t@example.org"}, "relay_contact", "control character U+0009"),
    ({"relay_contact": "ops@example.org\x7f"}, "relay_contact", "control character U+007F"),
    ({"relay_contact": "ops@example.org\u2028"}, "relay_contact", "control character U+2028"),
    ({"relay_contact": "ops@example.org \\"}, "relay_contact", "trailing backslash"),
    ({"relay_contact": "ops@example.org # relay team"}, "relay_contact", "no '#'"),
    ({"relay_contact": "ops#1@example.org"}, "relay_contact", "no '#'"),
    ({"relay_contact": "ops@example.org "}, "relay_contact", "no spaces at either end"),
    ({"relay_contact": '"ops@example.org'}, "relay_contact", "no double quote at the start"),
    ({"public_ipv4": "10.1.2.3"}, "public_ipv4", "public IPv4 address"),
    ({"public_ipv4": "127.0.0.1"}, "public_ipv4", "public IPv4 address"),
    ({"public_ipv4": "203.0.113"}, "public_ipv4", "203.0.113.10"),
    ({"public_ipv4": "relay.example.org"}, "public_ipv4", "public IPv4 address"),
    ({"public_ipv6": "fe80::1"}, "public_ipv6", "global IPv6 address"),
    ({"public_ipv6": "2001:db8::g"}, "public_ipv6", "IPv6 address"),
    ({"public_ipv6": "2001:db8::10%vtnet0"}, "public_ipv6", "without a %zone suffix"),
    ({"public_ipv4": "203.0.113.10\n"}, "public_ipv4", "203.0.113.10"),
    ({"or_port": 0}, "or_port", "port 1-65535"),
    ({"or_port": 70000}, "or_port", "port 1-65535"),
    ({"or_port": "9001"}, "or_port", "whole number"),
    ({"dir_port": -1}, "dir_port", "0 (off) or a port"),
    ({"dir_port": 9001}, "dir_port", "different from or_port"),
    ({"sshd_port": 9030}, "sshd_port", "different from dir_port"),
    ({"exit_relay": "yes"}, "exit_relay", "True or False"),
    ({"exit_notice": True}, "exit_notice", "unless exit_relay is True"),
    ({"exit_policy": ["accept *:443"]}, "exit_policy", "unless exit_relay is True"),
    ({"exit_resolvers": ["198.51.100.53"]}, "exit_resolvers", "unless exit_relay is True"),
    ({"exit_relay": True, "exit_resolvers": ["8.8.8.8"]}, "exit_resolvers", "Google's public resolver"),
    ({"exit_relay": True, "exit_resolvers": ["198.51.100.53", "8.8.4.4"]}, "exit_resolvers", "Google's"),
    ({"exit_relay": True, "exit_resolvers": ["2001:4860:4860:0:0:0:0:8888"]}, "exit_resolvers", "Google's"),
    ({"exit_relay": True, "exit_resolvers": ["1.1.1.1"]}, "exit_resolvers", "Cloudflare's public resolver"),
    ({"exit_relay": True, "exit_resolvers": ["1.0.0.1"]}, "exit_resolvers", "Cloudflare's"),
    ({"exit_relay": True, "exit_resolvers": ["2606:4700:4700::1001"]}, "exit_resolvers", "Cloudflare's"),
    ({"exit_relay": True, "exit_resolvers": ["9.9.9.9"]}, "exit_resolvers", "Quad9's public resolver"),
    ({"exit_relay": True, "exit_resolvers": ["149.112.112.112"]}, "exit_resolvers", "Quad9's"),
    ({"exit_relay": True, "exit_resolvers": ["2620:fe::fe"]}, "exit_resolvers", "Quad9's"),
    ({"exit_relay": True, "exit_resolvers": ["::ffff:9.9.9.9"]}, "exit_resolvers", "Quad9's"),
    ({"exit_relay": True, "exit_resolvers": ["208.67.222.222"]}, "exit_resolvers", "OpenDNS's public resolver"),
    ({"exit_relay": True, "exit_resolvers": ["208.67.220.220"]}, "exit_resolvers", "OpenDNS's"),
    ({"exit_relay": True, "exit_resolvers": ["2620:119:35::35"]}, "exit_resolvers", "OpenDNS's"),
    ({"exit_relay": True, "exit_resolvers": ["127.0.0.1"]}, "exit_resolvers", "not loopback"),
    ({"exit_relay": True, "exit_resolvers": ["resolver.example.org"]}, "exit_resolvers", "IP addresses"),
    ({"exit_relay": True, "exit_resolvers": ["198.51.100.53\n"]}, "exit_resolvers", "IP addresses"),
    ({"exit_relay": True, "exit_resolvers": ["fe80::1%vtnet0"]}, "exit_resolvers", "IP addresses"),
    ({"exit_relay": True, "exit_resolvers": ["198.51.100.53", "198.51.100.53"]}, "exit_resolvers", "once"),
    ({"exit_relay": True, "exit_resolvers": "198.51.100.53"}, "exit_resolvers", "list"),
    ({"exit_relay": True, "exit_policy": ["allow all"]}, "exit_policy", "accept *:443"),
    ({"exit_relay": True, "exit_policy": ["accept *:70000", "reject *:*"]}, "exit_policy", "1 <= N <= M <= 65535"),
    ({"exit_relay": True, "exit_policy": ["accept *:0", "reject *:*"]}, "exit_policy", "1 <= N <= M <= 65535"),
    ({"exit_relay": True, "exit_policy": ["accept *:443-80", "reject *:*"]}, "exit_policy", "1 <= N <= M"),
    ({"exit_relay": True, "exit_policy": ["accept *:443\n", "reject *:*"]}, "exit_policy", "one rule per line"),
    ({"exit_relay": True, "exit_policy": ["accept *:443,reject *:*"]}, "exit_policy", "one rule per line"),
    ({"exit_relay": True, "exit_policy": ["ACCEPT *:443", "reject *:*"]}, "exit_policy", "one rule per line"),
    ({"exit_relay": True, "exit_policy": ["accept *:١٤٣", "reject *:*"]}, "exit_policy", "ports '*', N or N-M"),
    ({"exit_relay": True, "exit_policy": ["accept 198.51.100.0/33:443", "reject *:*"]}, "exit_policy", "/0-/32"),
    ({"exit_relay": True, "exit_policy": ["accept 198.51.100.7/24:443", "reject *:*"]}, "exit_policy",
     "without host bits"),
    ({"exit_relay": True, "exit_policy": ["accept 198.51.100.0/255.255.255.0:443", "reject *:*"]}, "exit_policy",
     "one rule per line"),
    ({"exit_relay": True, "exit_policy": ["accept 2001:db8::/32:443", "reject *:*"]}, "exit_policy",
     "an IPv6 address in brackets"),
    ({"exit_relay": True, "exit_policy": ["accept [198.51.100.7]:443", "reject *:*"]}, "exit_policy",
     "IPv4 without"),
    ({"exit_relay": True, "exit_policy": ["accept6 198.51.100.0/24:443", "reject *:*"]}, "exit_policy",
     "tor ignores IPv4 there"),
    ({"exit_relay": True, "exit_policy": ["accept6 *4:443", "reject *:*"]}, "exit_policy", "tor ignores '*4'"),
    ({"exit_relay": True, "exit_policy": ["reject6 private:*", "reject *:*"]}, "exit_policy",
     "tor ignores 'private'"),
    ({"exit_relay": True, "exit_policy": ["accept6 [2001:db8::1%vtnet0]:443", "reject *:*"]}, "exit_policy",
     "one rule per line"),
    ({"exit_relay": True, "exit_policy": ["accept */8:443", "reject *:*"]}, "exit_policy", "no /bits after '*'"),
    ({"exit_relay": True, "exit_policy": ["accept *:443"]}, "exit_policy", "add 'reject *:*'"),
    ({"exit_relay": True, "exit_policy": ["accept *:443", "reject *:25"]}, "exit_policy", "add 'reject *:*'"),
    ({"exit_relay": True, "exit_policy": ["accept *:443", "reject *:1-65534"]}, "exit_policy", "add 'reject *:*'"),
    ({"exit_relay": True, "exit_policy": ["accept *:443", "reject 0.0.0.0/1:*"]}, "exit_policy", "add 'reject *:*'"),
    ({"exit_relay": True, "exit_policy": ["accept *:443", "reject *4:*"], "public_ipv6": "2001:db8::10"},
     "exit_policy", "add 'reject6 *:*'"),
    ({"exit_relay": True, "exit_policy": ["reject *:25", "accept *:*"]}, "exit_policy", "opens every IPv4"),
    ({"exit_relay": True, "exit_policy": ["accept *6:*", "reject *:*"], "public_ipv6": "2001:db8::10"},
     "exit_policy", "opens every IPv6"),
    ({"exit_relay": True, "exit_policy": ["reject *:*", "accept *:443"]}, "exit_policy", "never used"),
    ({"exit_relay": True, "exit_policy": ["accept6 [2001:db8::]/32:443", "reject *:*"]}, "exit_policy",
     "applies to IPv6 only"),
    ({"exit_relay": True, "exit_notice": True, "dir_port": 0}, "exit_notice", "dir_port"),
    ({"accounting_max": "500GB"}, "accounting_max", "tor's units"),
    ({"accounting_max": "500 GiB"}, "accounting_max", "tor's units"),
    ({"accounting_max": "500 GBytes\n"}, "accounting_max", "tor's units"),
    ({"accounting_max": "١٠ GBytes"}, "accounting_max", "tor's units"),
    ({"accounting_max": "9000000 TBytes"}, "accounting_max", "at most 2^63-1 bytes"),
    ({"bandwidth_rate": "2 MBytes\n"}, "bandwidth_rate", "tor's units"),
    ({"bandwidth_rate": "70 KBytes"}, "bandwidth_rate", "75 KBytes to 2 GBytes"),
    ({"bandwidth_rate": "3 GBytes"}, "bandwidth_rate", "75 KBytes to 2 GBytes"),
    ({"bandwidth_rate": "1 GBytes", "bandwidth_burst": "3 GBytes"}, "bandwidth_burst", "75 KBytes to 2 GBytes"),
    ({"accounting_start": "month 1 00:00\n"}, "accounting_start", "month D HH:MM"),
    ({"accounting_start": "month ١ 00:00"}, "accounting_start", "month D HH:MM"),
    ({"accounting_start": "month 31 00:00"}, "accounting_start", "month D HH:MM"),
    ({"accounting_start": "week 1 25:00"}, "accounting_start", "00:00-23:59"),
    ({"accounting_start": "day 1 10:00"}, "accounting_start", "day HH:MM"),
    ({"accounting_start": "yearly"}, "accounting_start", "month D HH:MM"),
    ({"accounting_rule": "both"}, "accounting_rule", "'sum'"),
    ({"bandwidth_burst": "2 MBytes"}, "bandwidth_burst", "bandwidth_rate to be set"),
    ({"bandwidth_rate": "2 MBytes", "bandwidth_burst": "1 MBytes"}, "bandwidth_burst", "at least bandwidth_rate"),
    ({"jail_name": "Tor Jail"}, "jail_name", "letters, digits, '_' and '-'"),
    ({"jail_name": "tor.relay"}, "jail_name", "no '.'"),
    ({"jail_name": "42"}, "jail_name", "not all digits"),
    ({"jail_name": "-tor"}, "jail_name", "not starting with '-'"),
    ({"jail_name": "tor\n"}, "jail_name", "letters, digits"),
    ({"jail_name": "t" * 239}, "jail_name", "at most 238 characters"),
    ({"jail_interface": "lo1\n"}, "jail_interface", "cloned loopback"),
    ({"jail_interface": "lo0"}, "jail_interface", "cloned loopback"),
    ({"jail_ip": "8.8.8.8"}, "jail_ip", "private IPv4"),
    ({"jail_ip": "10.0.0.999"}, "jail_ip", "private IPv4"),
    ({"jail_root": "var/jails/tor"}, "jail_root", "absolute path"),
    ({"jail_root": "/var/jails/../tor"}, "jail_root", "absolute path"),
    ({"jail_release": "13.2-RELEASE"}, "jail_release", "14.0 or later"),
    ({"jail_release": "14.3"}, "jail_release", "14.3-RELEASE"),
    ({"jail_release": "١٤.3-RELEASE"}, "jail_release", "14.3-RELEASE"),
    ({"jail_release": "14.3-RELEASE\n"}, "jail_release", "14.3-RELEASE"),
    ({"jail_release": "014.3-RELEASE"}, "jail_release", "14.3-RELEASE"),
    ({"release_mirror": "https://download.freebsd.org/releases\n"}, "release_mirror", "https URL"),
    ({"release_mirror": "http://download.freebsd.org/releases"}, "release_mirror", "https URL"),
    ({"release_mirror": "ftp://ftp.freebsd.org/pub/FreeBSD/releases"}, "release_mirror", "https URL"),
    ({"host_logs": ["syslog"]}, "host_logs", "'pflog' or 'jail_console'"),
    ({"host_logs": "pflog"}, "host_logs", "list"),
    ({"jail_release_sha256": "A" * 64}, "jail_release_sha256", "64 lowercase hex digits"),
    ({"jail_release_sha256": "a" * 63}, "jail_release_sha256", "64 lowercase hex digits"),
    ({"jail_release_sha256": "a" * 64 + "\n"}, "jail_release_sha256", "64 lowercase hex digits"),
    ({"jail_release_sha256": "SHA256 (base.txz) = " + "a" * 64}, "jail_release_sha256", "64 lowercase hex digits"),
    ({"jail_arch": "i386"}, "jail_arch", "'amd64'"),
    ({"release_mirror": "download.freebsd.org"}, "release_mirror", "https URL"),
    ({"pkg_branch": "main"}, "pkg_branch", "'quarterly'"),
    ({"image_path": "/var/jails/tor/tor.img"}, "image_path", "outside jail_root"),
    ({"image_path": "/var/jails/tor.img\n"}, "image_path", "absolute path"),
    ({"jail_root": "/var/jails/t or"}, "jail_root", "absolute path"),
    ({"image_size": "8G\n"}, "image_size", "size like 8G"),
    ({"image_size": "1G"}, "image_size", "from 2G to 2T"),
    ({"image_size": "8 GB"}, "image_size", "size like 8G"),
    ({"image_size": "3T"}, "image_size", "from 2G to 2T"),
    ({"md_unit": 100}, "md_unit", "0-99"),
    ({"md_unit": 99, "swap_file_size": "2G"}, "md_unit", "the swap file (swap_file_size) is attached as md99"),
    ({"md_unit": 3, "swap_devices": ["/dev/md3"]}, "md_unit", "swap_devices lists /dev/md3"),
    ({"md_unit": 3, "swap_devices": ["/dev/ada0p3", "/dev/md3p1"]}, "md_unit", "swap_devices lists /dev/md3p1"),
    ({"geli_cipher": "AES-GCM"}, "geli_cipher", "'AES-XTS'"),
    ({"geli_key_length": 512}, "geli_key_length", "128 or 256"),
    ({"geli_sector_size": 3000}, "geli_sector_size", "4096"),
    ({"geli_passphrase_env": "hunter2 is my passphrase"}, "geli_passphrase_env", "NAME of an environment variable"),
    ({"geli_passphrase_command": "pass show x"}, "geli_passphrase_command", "a list"),
    ({"geli_passphrase_command": ["pass", "show\0x"]}, "geli_passphrase_command", "list of words"),
    ({"geli_passphrase_env": "TORJAIL_GELI_PASSPHRASE\n"}, "geli_passphrase_env", "NAME of an environment"),
    ({"swap_devices": ["/dev/ada0p3.eli"]}, "swap_devices", "plain swap devices"),
    ({"swap_devices": "auto"}, "swap_devices", "'detect'"),
    ({"swap_devices": ["/dev/ada0p3\n"]}, "swap_devices", "plain swap devices"),
    ({"swap_file_size": "lots"}, "swap_file_size", "size like 8G"),
    ({"swap_file_size": "2G\n"}, "swap_file_size", "size like 8G"),
    ({"ext_if": "eth 0"}, "ext_if", "interface name"),
    ({"ext_if": "vtnet0\n"}, "ext_if", "interface name"),
    ({"ext_if": "vtnet١"}, "ext_if", "interface name"),
    ({"ext_if": "averylongdriver0"}, "ext_if", "at most 15 characters"),
    ({"admin_networks": []}, "admin_networks", "at least one network"),
    ({"admin_networks": ["198.51.100.0/33"]}, "admin_networks", "198.51.100.0/24"),
    ({"admin_networks": ["10.0.0.0/255.0.0.0"]}, "admin_networks", "not a netmask"),
    ({"admin_networks": ["10.0.0.0/0.255.255.255"]}, "admin_networks", "not a netmask"),
    ({"admin_networks": ["10.0.0.0/08"]}, "admin_networks", "prefix length"),
    ({"admin_networks": ["2001:db8::%vtnet0/48"]}, "admin_networks", "no %zone"),
    ({"admin_networks": ["fe80::1%vtnet0"]}, "admin_networks", "no %zone"),
    ({"admin_networks": ["198.51.100.7/24"]}, "admin_networks", "without host bits, like 198.51.100.0/24"),
    ({"admin_networks": ["198.51.100.0/24\n"]}, "admin_networks", "198.51.100.0/24"),
    ({"sshd_max_connections": 0}, "sshd_max_connections", "1-1000"),
    ({"sshd_connection_rate": "15 per minute"}, "sshd_connection_rate", "15/60"),
    ({"sshd_connection_rate": "15/60\n"}, "sshd_connection_rate", "15/60"),
    ({"sshd_connection_rate": "١٥/60"}, "sshd_connection_rate", "15/60"),
    ({"pf_rollback_seconds": 5}, "pf_rollback_seconds", "15-900"),
    ({"sshd_block_seconds": 10}, "sshd_block_seconds", "60-86400"),
    ({"metrics_port": 9035}, "metrics_networks", "at least one network"),
    ({"metrics_networks": ["198.51.100.0/24"]}, "metrics_port", "no MetricsPort"),
    ({"metrics_port": 70000, "metrics_networks": ["198.51.100.0/24"]}, "metrics_port", "1-65535"),
    ({"metrics_port": 9001, "metrics_networks": ["198.51.100.0/24"]}, "metrics_port", "different from or_port"),
    ({"metrics_port": 22, "metrics_networks": ["198.51.100.0/24"]}, "metrics_port", "different from sshd_port"),
    ({"metrics_port": 9035, "metrics_networks": ["0.0.0.0/0"]}, "metrics_networks", "narrower than the world"),
    ({"metrics_port": 9035, "metrics_networks": ["2001:db8::/32"]}, "metrics_networks", "IPv4 networks"),
    ({"metrics_port": 9035, "metrics_networks": ["198.51.100.7/24"]}, "metrics_networks", "without host bits"),
    ({"relay_nicknam": "Typo"}, "relay_nicknam", "not a torjail setting"),
]


@pytest.mark.parametrize("overrides, setting, expected", BAD_INPUTS, ids=[f"{s}-{i}" for i, (_, s, _) in enumerate(BAD_INPUTS)])
def test_bad_input_names_host_and_setting(overrides, setting, expected):
    with pytest.raises(SettingsError) as caught:
        build_settings("relay9.example.org", {**GOOD, **overrides})
    assert any(
        problem.startswith(f"relay9.example.org: setting '{setting}': ") and expected in problem
        for problem in caught.value.problems
    ), caught.value.problems


@pytest.mark.parametrize("missing", ["relay_nickname", "relay_contact", "public_ipv4"])
def test_required_settings(missing):
    data = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(SettingsError) as caught:
        build_settings("relay9", data)
    [problem] = caught.value.problems
    assert problem.startswith(f"relay9: setting '{missing}': is required and has no default; "
                              "set it in inventory.py or group_data")


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as caught:
        build_settings("relay9", {**GOOD, "or_port": 0, "jail_ip": "1.1.1.1", "image_size": "1G"})
    assert len(caught.value.problems) == 3


def test_connection_data_is_not_a_setting():
    settings = build_settings("relay9", {**GOOD, "ssh_user": "root", "ssh_port": 2222, "_sudo": False})
    assert settings.sshd_port == 22  # pyinfra's ssh_port is the connection; sshd_port the firewall


def test_valid_settings_and_derived_values():
    settings = build_settings("relay9", {**GOOD, "public_ipv6": "2001:DB8::10", "accounting_max": "10 GBytes"})
    assert settings.public_ipv6 == "2001:db8::10"
    assert settings.accounting and settings.ipv6
    assert settings.eli_device == "md10.eli"
    assert settings.image_bytes == 8 * 2**30
    assert settings.base_url == "https://download.freebsd.org/releases/amd64/14.3-RELEASE"


def test_group_data_holds_every_default_in_order():
    """group_data/all.py documents every setting, in the model's (and README's) order, with the model's default."""
    tree = ast.parse((ROOT / "group_data/all.py").read_text())
    assigned = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)}
    text = (ROOT / "group_data/all.py").read_text()
    documented = [name for name in SETTING_NAMES if f"\n{name} = " in text or f"\n# {name} = " in text]
    assert documented == SETTING_NAMES
    positions = [text.index(f"{name} = ") for name in SETTING_NAMES]
    assert positions == sorted(positions)
    for name, value in assigned.items():
        assert Settings.model_fields[name].default == value, name


def test_readme_documents_every_setting_in_order():
    readme = (ROOT / "README.md").read_text()
    positions = [readme.find(f"| `{name}` |") for name in SETTING_NAMES]
    assert -1 not in positions, [n for n, p in zip(SETTING_NAMES, positions) if p == -1]
    assert positions == sorted(positions)


GOOD_VALUES = [
    # values FreeBSD and tor take, which the loader must take too
    {"jail_name": "tor-relay_2"},
    {"jail_name": "Relay"},
    {"jail_name": "2tor"},
    {"relay_contact": "Zoë Operator <ops@example.org> \\ \"relay team\""},
    {"admin_networks": ["198.51.100.7", "198.51.100.0/24", "2001:db8::/32", "::ffff:198.51.100.0/120"]},
    {"exit_relay": True, "exit_policy": ["reject *:*"]},
    {"exit_relay": True, "exit_policy": ["accept *:443", "reject *:*"]},
    {"exit_relay": True, "exit_policy": ["reject private:*", "accept 198.51.100.0/24:80-81", "reject *4:*"]},
    {"exit_relay": True, "exit_policy": ["accept *:443", "reject 0.0.0.0/0:1-65535"]},
    {"exit_relay": True, "public_ipv6": "2001:db8::10",
     "exit_policy": ["accept6 [2001:db8::]/32:443", "accept *4:443", "reject *4:*", "reject6 *:*"]},
    {"exit_relay": True, "public_ipv6": "2001:db8::10", "exit_policy": ["accept *:443", "reject [::]/0:*",
                                                                        "reject *:*"]},
    {"md_unit": 99},
    {"exit_relay": True, "exit_resolvers": ["198.51.100.53", "2001:db8::53"]},
    {"md_unit": 3, "swap_devices": ["/dev/md30", "/dev/ada0p3"], "swap_file_size": "2G"},
    {"bandwidth_rate": "75 KBytes", "bandwidth_burst": "2 GBytes"},
]


@pytest.mark.parametrize("overrides", GOOD_VALUES, ids=[str(i) for i in range(len(GOOD_VALUES))])
def test_values_freebsd_and_tor_take_are_taken(overrides):
    settings = build_settings("relay9", {**GOOD, **overrides})
    assert all(getattr(settings, name) == value for name, value in overrides.items() if name != "public_ipv6")


RECIPIENT = "age19s9uupdwtthy8lqxy2uefcjzyrffx9wu0dmfxjec8dzjnehea38q7hxyad"


@pytest.mark.parametrize("changes, setting, expected", [
    ({"identity": "offline-master"}, "age_recipient", "is required with identity 'offline-master'"),
    ({"identity": "offline"}, "identity", "one of 'offline-master' or 'on-relay'"),
    ({"age_recipient": "age1notakey"}, "age_recipient", "expected an age public key"),
    ({"age_recipient": "AGE-SECRET-KEY-1QQQ"}, "age_recipient", "expected an age public key"),
    ({"signing_key_lifetime_days": 1}, "signing_key_lifetime_days", "expected 2-365 days"),
    ({"signing_key_lifetime_days": 366}, "signing_key_lifetime_days", "expected 2-365 days"),
    ({"secrets_dir": "secrets"}, "secrets_dir", "expected an absolute path"),
    ({"secrets_dir": str(ROOT / "secrets")}, "secrets_dir", "expected a directory outside the repository"),
    ({"secrets_dir": str(ROOT)}, "secrets_dir", "expected a directory outside the repository"),
])
def test_identity_settings_refused(changes, setting, expected):
    """An offline master key needs somewhere to be kept encrypted, outside the checkout; tor's own limits hold."""
    with pytest.raises(SettingsError) as error:
        build_settings("relay9", {**GOOD, "identity": "offline-master", "age_recipient": RECIPIENT, **changes}
                       if setting != "age_recipient" or "identity" not in changes else {**GOOD, **changes})
    assert f"relay9: setting '{setting}': " in str(error.value)
    assert expected in str(error.value)


def test_secrets_dir_refused_inside_the_inventory_directory(tmp_path, monkeypatch):
    """pyinfra runs from the directory holding inventory.py: a secrets directory under it is in the repository."""
    (tmp_path / "inventory.py").write_text("relays = []\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError, match="setting 'secrets_dir': expected a directory outside the repository"):
        build_settings("relay9", {**GOOD, "secrets_dir": str(tmp_path / "keys")})


def test_offline_master_is_the_default_and_secrets_dir_is_expanded_here(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = build_settings("relay9", {key: value for key, value in GOOD.items() if key != "identity"}
                              | {"age_recipient": RECIPIENT})
    assert settings.identity == "offline-master" and settings.offline_master_key
    assert settings.secrets_dir == str(tmp_path / ".local/share/torjail")
    assert settings.signing_key_lifetime_days == 30
