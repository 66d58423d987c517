"""A host's list of jails (torjail.settings.jails): today's flat settings are one relay jail, unchanged; a list is
checked entry by entry and across jails, every problem naming the entry; the host's quota is split among relays."""

from pathlib import Path

import pytest

from torjail.budget import parse_traffic
from torjail.settings import Settings, SettingsError, build_settings, host_settings

HOST = {"identity": "on-relay", "relay_contact": "ops@example.org", "public_ipv4": "198.51.100.7",
        "family": "fleet", "age_recipient": "age19s9uupdwtthy8lqxy2uefcjzyrffx9wu0dmfxjec8dzjnehea38q7hxyad"}
FIRST = {"kind": "relay", "jail_name": "tor", "jail_ip": "10.0.0.1", "md_unit": 10, "relay_nickname": "First"}
SECOND = {"kind": "relay", "jail_name": "tor2", "jail_ip": "10.0.0.2", "md_unit": 11, "relay_nickname": "Second",
          "or_port": 9002, "dir_port": 0}
ONION = {"kind": "onion-service", "jail_name": "web", "jail_ip": "10.0.0.3", "md_unit": 12, "onion_ports": [80],
         "service_packages": ["nginx"], "service_rc": ["nginx"]}


def host(*jails, **settings):
    return build_settings("multi.example.org", {**HOST, **settings, "jails": list(jails)})


def problems(*jails, **settings):
    with pytest.raises(SettingsError) as caught:
        host(*jails, **settings)
    return caught.value.problems


def test_a_host_without_jails_is_its_own_one_relay_jail():
    flat = build_settings("one", {**HOST, "relay_nickname": "First"})
    assert flat.jail_settings == [flat] and flat.relays == [flat] and flat.onion_services == []
    assert host_settings("one", {**HOST, "relay_nickname": "First"}) == flat
    assert flat.relay_name == "one"


def test_one_listed_relay_with_the_flat_defaults_is_the_flat_relay():
    """Going from flat settings to a list keeps the jail where it is: same name, root, image, md unit, address."""
    flat = build_settings("multi.example.org", {**HOST, "relay_nickname": "First"})
    [listed] = host(FIRST).relays
    assert listed.model_dump() == flat.model_dump()
    assert (listed.jail_root, listed.image_path, listed.md_device) == ("/var/jails/tor", "/var/jails/tor.img", "md10")
    assert host_settings("multi.example.org", {**HOST, "jails": [FIRST]}).relays == [listed]
    assert listed.relay_name == "multi.example.org"  # its keys and records stay where the flat relay's are


def test_two_relays_and_an_onion_service():
    settings = host(FIRST, SECOND, ONION, exit_relay=False, jail_release="14.2-RELEASE")
    first, second = settings.relays
    [onion] = settings.onion_services
    assert [jail.jail_name for jail in settings.jail_settings] == ["tor", "tor2", "web"]
    assert (second.relay_nickname, second.or_port, second.dir_port) == ("Second", 9002, 0)
    assert (second.jail_root, second.image_path, second.eli_device) == ("/var/jails/tor2", "/var/jails/tor2.img",
                                                                        "md11.eli")
    assert first.jail_release == second.jail_release == "14.2-RELEASE"  # the host's settings are each relay's
    assert first.family == second.family == "fleet"
    assert (onion.jail_root, onion.image_path, onion.jail_conf_path) == ("/var/jails/web", "/var/jails/web.img",
                                                                         "/etc/jail.conf.d/web.conf")
    assert onion.geli_passphrase_env == settings.geli_passphrase_env and onion.image_size == settings.image_size


def test_an_entry_overrides_the_hosts_settings_for_its_jail_only():
    settings = host(FIRST, {**SECOND, "exit_relay": True, "image_size": "16G", "geli_passphrase_env": "SECOND_PASS"})
    first, second = settings.relays
    assert (first.exit_relay, first.image_size, first.geli_passphrase_env) == (False, "8G", "TORJAIL_GELI_PASSPHRASE")
    assert (second.exit_relay, second.image_size, second.geli_passphrase_env) == (True, "16G", "SECOND_PASS")


@pytest.mark.parametrize("setting, value", [
    ("jail_name", "relay"), ("jail_ip", "10.0.0.9"), ("md_unit", 20), ("jail_root", "/data/tor"),
    ("image_path", "/data/tor.img"), ("relay_nickname", "Old"), ("public_ipv6", "2001:db8::7"),
    ("metrics_port", 9035), ("metrics_networks", ["198.51.100.0/24"]),
])
def test_a_jails_own_setting_given_for_the_host_is_refused_not_dropped(setting, value):
    """Moving flat settings into a list: a non-default image_path left at the host would give the listed jail a
    new, empty vault at /var/jails/NAME.img; it must move into the entry."""
    assert f"multi.example.org: setting '{setting}': is each listed jail's own: with jails, set it in the jail's " \
           "entry (here it would go unused)" in problems(FIRST, SECOND, **{setting: value})
    assert host(FIRST, SECOND, **{setting: Settings.model_fields[setting].default}).relays  # the default is fine


@pytest.mark.parametrize("second, expected", [
    ({"jail_name": "tor"}, ("jails[1].jail_name", "expected a name of its own, got 'tor' as jails[0] has")),
    ({"jail_ip": "10.0.0.1"}, ("jails[1].jail_ip", "expected an address of its own")),
    ({"md_unit": 10}, ("jails[1].md_unit", "expected an md unit of its own")),
    ({"image_path": "/var/jails/tor.img"}, ("jails[1].image_path", "expected a path apart from jails[0]'s "
                                                                   "image_path (/var/jails/tor.img)")),
    ({"image_path": "/var/jails/tor/second.img"}, ("jails[1].image_path", "expected a path apart from jails[0]'s "
                                                                          "jail_root (/var/jails/tor)")),
    ({"image_path": "/var/jails/tor"}, ("jails[1].image_path", "apart from jails[0]'s jail_root")),
    ({"jail_root": "/var/jails/tor/inner"}, ("jails[1].jail_root", "apart from jails[0]'s jail_root")),
    ({"jail_root": "/var/jails/tor.img/x"}, ("jails[1].jail_root", "apart from jails[0]'s image_path")),
    ({"relay_nickname": "FIRST"}, ("jails[1].relay_nickname", "expected a nickname of its own")),
    ({"metrics_port": 9001, "metrics_networks": ["198.51.100.0/24"]},
     ("jails[1].metrics_port", "got 9001 as jails[0].or_port has")),
    ({"relay_nickname": "First"}, ("jails[1].relay_nickname", "expected a nickname of its own")),
    ({"or_port": 9001}, ("jails[1].or_port", "expected a port of its own on the public address, got 9001 as "
                                             "jails[0].or_port has")),
    ({"dir_port": 9030}, ("jails[1].dir_port", "as jails[0].dir_port has")),
    ({"or_port": 22}, ("sshd_port (for jails[1])", "expected a port different from or_port (22)")),
    ({"or_port": 9030}, ("jails[1].or_port", "got 9030 as jails[0].dir_port has")),
    ({"bogus": 1}, ("jails[1].bogus", "is not a torjail setting (a typo?)")),
    ({"public_ipv4": "198.51.100.8"}, ("jails[1].public_ipv4", "is a setting of the whole host: set it beside "
                                                               "jails, for every jail")),
    ({"traffic_quota": "1 TB"}, ("jails[1].traffic_quota", "is a setting of the whole host")),
    ({"family": "other"}, ("jails[1].family", "is a setting of the whole host")),
    ({"onion_ports": [80]}, ("jails[1].onion_ports", "is not a setting of a jail of kind 'relay'")),
    ({"kind": "bridge"}, ("jails[1].kind", "expected one of 'relay', 'onion-service', got 'bridge'")),
    ({"relay_nickname": "bad name"}, ("jails[1].relay_nickname", "expected 1-19 letters or digits")),
    ({"jail_ip": "8.8.8.8"}, ("jails[1].jail_ip", "expected a private IPv4 address")),
    ({"exit_notice": True}, ("jails[1].exit_notice", "expected False unless exit_relay is True")),
])
def test_bad_combinations_are_refused_naming_the_entry(second, expected):
    setting, words = expected
    found = problems(FIRST, {**SECOND, **second})
    assert any(problem.startswith(f"multi.example.org: setting '{setting}': ") and words in problem
               for problem in found), found


@pytest.mark.parametrize("missing", ["jail_name", "jail_ip", "md_unit", "relay_nickname"])
def test_a_relay_entry_names_its_own_jail(missing):
    entry = {key: value for key, value in SECOND.items() if key != missing}
    assert f"multi.example.org: setting 'jails[1].{missing}': is required in every jail of the list" in \
        problems(FIRST, entry)


def test_an_onion_service_is_checked_as_a_jail_of_its_own():
    found = problems(FIRST, {**ONION, "md_unit": 10, "onion_ports": [80, 80], "service_rc": ["tor"],
                             "relay_nickname": "Web"})
    assert "multi.example.org: setting 'jails[1].relay_nickname': is not a setting of a jail of kind " \
           "'onion-service'" in found
    found = problems(FIRST, {**ONION, "onion_ports": [80, 80], "service_rc": ["tor"]})
    assert any("'jails[1].onion_ports': expected each port once" in problem for problem in found), found
    assert any("'jails[1].service_rc': expected rc.d service names" in problem for problem in found), found
    found = problems(FIRST, {**ONION, "onion_ports": []})
    assert any("'jails[1].onion_ports': expected at least one port" in problem for problem in found), found
    found = problems(FIRST, {**ONION, "md_unit": 10})
    assert any("'jails[1].md_unit': expected an md unit of its own" in problem for problem in found), found


@pytest.mark.parametrize("entry", [SECOND, ONION])
def test_every_image_is_free_of_the_swap_files_md_unit(entry):
    found = problems(FIRST, {**entry, "md_unit": 99}, swap_file_size="2G")
    assert any(problem.startswith("multi.example.org: setting 'jails[1].md_unit': expected a unit other than 99")
               for problem in found), found


def test_a_problem_of_a_host_setting_names_the_jail_it_breaks():
    found = problems(FIRST, {**SECOND, "exit_relay": False}, exit_notice=True, dir_port=9030)
    assert any(problem.startswith("multi.example.org: setting 'exit_notice (for jails[0])': expected False unless")
               for problem in found), found


def test_two_relays_metrics_ports_are_apart_on_the_public_address():
    metrics = {"metrics_port": 9035, "metrics_networks": ["198.51.100.0/24"]}
    assert "multi.example.org: setting 'jails[1].metrics_port': expected a port of its own on the public address, " \
           "got 9035 as jails[0].metrics_port has" in problems({**FIRST, **metrics}, {**SECOND, **metrics})
    assert host({**FIRST, **metrics}, {**SECOND, **metrics, "metrics_port": 9036}).relays[1].metrics_port == 9036


def test_an_onion_services_image_is_apart_from_its_own_root():
    found = problems(FIRST, {**ONION, "image_path": "/var/jails/web/web.img"})
    assert "multi.example.org: setting 'jails[1].image_path': expected a path apart from its own jail_root " \
           "(/var/jails/web), got /var/jails/web/web.img" in found


def test_an_entry_that_is_not_a_dict_is_named_by_its_place():
    found = problems(FIRST, 1)
    assert any(problem.startswith("multi.example.org: setting 'jails[1]': ") for problem in found), found


def test_a_list_holds_at_most_one_jail_per_md_unit():
    assert "multi.example.org: setting 'jails': expected None (one relay jail from the host's settings) or a list " \
           "of 1 to 100 jails (one md unit each), got 101" in problems(*[ONION] * 101)


def test_the_reserve_share_is_rounded_up_so_the_relays_fit_the_quota_together():
    settings = host(FIRST, SECOND, {**SECOND, "jail_name": "tor3", "jail_ip": "10.0.0.4", "md_unit": 13,
                                    "relay_nickname": "Third", "or_port": 9003},
                    traffic_quota="3 TB", traffic_reserve="2 B")
    assert [relay.traffic_reserve for relay in settings.relays] == ["1 B"] * 3
    assert sum(relay.plan.worst_month for relay in settings.relays) <= parse_traffic("3 TB") - 2


def test_every_problem_of_every_entry_at_once():
    found = problems({**FIRST, "relay_nickname": "bad name"}, {**SECOND, "jail_ip": "8.8.8.8"}, {"kind": "bridge"})
    assert len(found) == 3, found
    assert [problem.split("'")[1] for problem in found] == ["jails[0].relay_nickname", "jails[1].jail_ip",
                                                           "jails[2].kind"]


def test_at_most_eight_relays_on_the_one_public_ipv4_address():
    def relay(n):
        return {"kind": "relay", "jail_name": f"tor{n}", "jail_ip": f"10.0.0.{n}", "md_unit": 10 + n,
                "relay_nickname": f"Relay{n}", "or_port": 9000 + n, "dir_port": 0}
    assert len(host(*[relay(n) for n in range(1, 9)]).relays) == 8
    assert "multi.example.org: setting 'jails': expected at most 8 relays on the host's one public IPv4 address " \
           "(tor's directory authorities list no more), got 9" in problems(*[relay(n) for n in range(1, 10)])


def test_several_relays_of_one_host_are_one_family():
    assert "multi.example.org: setting 'family': is required for a host with several relays: tor asks that relays " \
           "run by one operator declare each other as a family" in problems(FIRST, SECOND, family=None)
    assert host(FIRST, ONION, family=None).relays[0].family is None  # one relay: no family needed


def test_the_hosts_quota_is_split_evenly_among_its_relays():
    settings = host(FIRST, SECOND, ONION, traffic_quota="2 TB", traffic_reserve="100 GB")
    plans = [relay.plan for relay in settings.relays]
    assert [relay.traffic_quota for relay in settings.relays] == ["1000000000000 B"] * 2
    assert [relay.traffic_reserve for relay in settings.relays] == ["50000000000 B"] * 2
    # each relay's worst month fits its share; together they fit the host's quota less its reserve
    assert sum(plan.worst_month for plan in plans) <= parse_traffic("2 TB") - parse_traffic("100 GB")
    alone = build_settings("one", {**HOST, "relay_nickname": "First", "traffic_quota": "2 TB",
                                   "traffic_reserve": "100 GB"}).plan
    assert plans[0].rate < alone.rate


def test_an_explicit_allowance_must_fit_the_relays_share():
    assert host(FIRST, {**SECOND, "accounting_max": "300 GBytes"}, traffic_quota="2 TB").relays[1].plan
    assert build_settings("one", {**HOST, "relay_nickname": "First", "accounting_max": "1000 GBytes",
                                  "traffic_quota": "2 TB"}).plan  # the whole quota would take it
    found = problems(FIRST, {**SECOND, "accounting_max": "1000 GBytes"}, traffic_quota="2 TB")
    assert any(problem.startswith("multi.example.org: setting 'jails[1].accounting_max': ") for problem in found), \
        found


def test_the_hosts_nickname_is_for_a_host_without_jails():
    flat = {key: value for key, value in HOST.items()}
    with pytest.raises(SettingsError) as caught:
        build_settings("one", flat)
    assert caught.value.problems[0].startswith("one: setting 'relay_nickname': is required")
    assert host(FIRST).relay_nickname is None


def test_an_onion_service_takes_what_its_jail_shares_from_the_host_and_is_no_relay():
    settings = host_settings("multi.example.org", {**HOST, "jails": [FIRST, SECOND, ONION],
                                                   "jail_release": "14.2-RELEASE", "geli_cipher": "AES-CBC"})
    [web] = settings.onion_services
    assert [jail.jail_name for jail in settings.relays] == ["tor", "tor2"]
    assert (web.host_name, web.jail_release, web.geli_cipher, web.jail_interface) == (
        "multi.example.org", "14.2-RELEASE", "AES-CBC", "lo1")
    assert (web.kind, web.relay_name, web.exit_relay, web.ipv6) == ("onion-service", "multi.example.org/web", False,
                                                                    False)
    assert settings.with_ext_if("em0").onion_services[0].ext_if == "em0"


def test_each_listed_relay_has_its_own_name_for_its_records():
    """A relay named tor is the host's first (its records where a flat relay's are), every other is HOST/JAIL;
    the name survives with_ext_if (the deploy's preflight)."""
    first, second = host(FIRST, SECOND).with_ext_if("vtnet0").relays
    assert (first.relay_name, second.relay_name) == ("multi.example.org", "multi.example.org/tor2")
    [alone] = host(SECOND).relays
    assert alone.relay_name == "multi.example.org/tor2"


@pytest.mark.parametrize("interface", ["vtnet0", "vlan100"])
def test_ext_if_resolved_reaches_every_jail(interface):
    """What the server's default route names, as preflight resolves "detect" (a VLAN interface among them)."""
    settings = host(FIRST, SECOND).with_ext_if(interface)
    assert settings.ext_if == interface and [relay.ext_if for relay in settings.relays] == [interface] * 2
    assert build_settings("one", {**HOST, "relay_nickname": "A"}).with_ext_if("em0.100").ext_if == "em0.100"


def test_the_readmes_example_host_is_valid_as_it_says():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Several jails"):]
    code = section[section.index("```python\n") + 10:section.index("```\n", section.index("```python"))]
    name, data = eval(code.strip().rstrip(","), {"AGE_RECIPIENT": HOST["age_recipient"]})
    settings = build_settings(name, data)
    assert [relay.relay_nickname for relay in settings.relays] == ["Example3a", "Example3b"]
    assert [relay.traffic_quota for relay in settings.relays] == ["2000000000000 B"] * 2
    assert [onion.jail_name for onion in settings.onion_services] == ["web"]
    assert settings.relays[0].model_dump() == build_settings(name, {
        **{key: value for key, value in data.items() if key != "jails"}, "relay_nickname": "Example3a",
        "traffic_quota": "2000000000000 B"}).model_dump()


def test_each_relay_keeps_its_records_in_its_own_directory_of_the_hosts(tmp_path):
    """The relay named tor where the flat relay's records are; every other relay inside the host's directory,
    so a seizure that retires the host's directory takes every relay's records with it."""
    from torjail import identity

    first, second = host(FIRST, SECOND, secrets_dir=str(tmp_path)).relays
    assert identity.relay_dir(first) == identity.host_dir(first) == tmp_path / "multi.example.org"
    assert identity.relay_dir(second) == tmp_path / "multi.example.org" / "jails" / "tor2"
    assert identity.host_dir(second) == identity.host_dir(first)
