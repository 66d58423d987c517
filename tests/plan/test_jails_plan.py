"""A host's settings moved into a `jails` list of one relay plan exactly what its flat settings plan, on a fresh
server and on a converged one (nothing touches the image already there). A host of two relays gets each one's
image, jail, address and tor, one passphrase read and one pf.conf for both; adding the second never touches the
first's image. An onion-service jail stops every tool before any operation, and so does a list that would leave
the flat relay's records behind."""

import copy
import re
from pathlib import Path

import pytest
from harness import STDIN_MARK, plan
from pyinfra.api.exceptions import PyinfraError
from test_deploy_plan import (  # noqa: F401: fixtures
    DEPLOY, _merge_facts, passphrase, planned_operations, server, stable,
)

from torjail import family, secrets
from torjail.render import render_file
from torjail.settings import SettingsError, build_settings

TOOLS = DEPLOY.parent
LISTED = {"kind": "relay", "jail_name": "tor", "jail_ip": "10.0.0.1", "md_unit": 10, "relay_nickname": "TestRelay"}
SECOND = {"kind": "relay", "jail_name": "tor2", "jail_ip": "10.0.0.2", "md_unit": 11, "relay_nickname": "Second",
          "or_port": 9002, "dir_port": 0}


def as_list(data, *jails):
    """The fixture's host data with its relay moved into `jails`."""
    return {**{key: value for key, value in data.items() if key != "relay_nickname"}, "jails": list(jails)}


def planned(fixture, data, deploy=DEPLOY):
    loaded = server(fixture)
    result = plan(deploy, data=data(loaded["data"]), facts=loaded["facts"])
    return [(op.names, stable(op.commands), op.noops) for op in result.operations]


@pytest.mark.parametrize("fixture", ["deploy_fresh", "deploy_converged", "deploy_half_made"])
def test_one_listed_relay_plans_what_the_flat_settings_plan(fixture):
    flat = planned(fixture, lambda data: data)
    listed = planned(fixture, lambda data: as_list(data, LISTED))
    assert listed == flat
    assert flat  # the fixtures plan operations: the comparison is not of two empty plans


FLEET = {"family": "fleet", "age_recipient": "age19s9uupdwtthy8lqxy2uefcjzyrffx9wu0dmfxjec8dzjnehea38q7hxyad"}
ONION = {"kind": "onion-service", "jail_name": "web", "jail_ip": "10.0.0.3", "md_unit": 12, "onion_ports": [80]}
FIRST_JAIL = re.compile(r"(?<=/var/jails/)tor(?=[/.,]|$)|(?<=jail\.conf\.d/)tor(?=\.conf)|(?<=jail_name=)tor(?=,|$)"
                        r"|(?<=jail=)tor(?=,|$)")


def other_jail(text, name):
    """A fact's argument key (or value) of the first jail, said of another jail."""
    return FIRST_JAIL.sub(name, text) if isinstance(text, str) else text


def other_jails_as(facts, names, source):
    """facts, with each jail of names in the state that the facts `source` describe for the first jail. Facts
    without arguments (md units, providers, mounts, jails) are the server's, and facts already given are kept."""
    merged = copy.deepcopy(facts)
    for name, values in source.items():
        if isinstance(values, dict) and values and all("=" in key for key in values):
            for key, value in values.items():
                for jail in names:
                    if other_jail(key, jail) != key:
                        merged.setdefault(name, {}).setdefault(other_jail(key, jail), copy.deepcopy(value))
    return merged


def with_fresh_jails(facts, names=("tor2",)):
    """The fixture's facts, and for each other jail what a fresh server answers about the first: no image, no
    root, no files."""
    return other_jails_as(facts, names, server("deploy_fresh")["facts"])


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    """A family of this machine's own (the key made in tmp_path by the real tor --keygen-family)."""
    monkeypatch.setattr(family, "_MADE_HERE", {})
    return {**FLEET, "secrets_dir": str(tmp_path / "secrets")}


def family_facts():
    """Neither relay has run tor yet (no fingerprint) nor holds the family key."""
    return {"files.FileContents": {f"path=/var/jails/{name}/var/db/tor/fingerprint": None for name in ("tor", "tor2")},
            "files.Sha256File": {f"path=/var/jails/{name}/var/db/tor/keys/fleet.secret_family_key": None
                                 for name in ("tor", "tor2")}}


def plan_jails(fixture, fleet, *jails, facts=None):
    loaded = server(fixture)
    data = as_list({**loaded["data"], **fleet}, *jails)
    names = [jail["jail_name"] for jail in jails if jail["jail_name"] != "tor"]
    return plan(DEPLOY, data=data, facts=with_fresh_jails(_merge_facts(loaded["facts"], {**family_facts(),
                                                                                         **(facts or {})}), names))


def plan_two(fixture, fleet):
    return plan_jails(fixture, fleet, LISTED, SECOND)


def commands_of(result):
    return [command for op in result.operations for command in stable(op.commands)]


@pytest.mark.parametrize("fixture", ["deploy_fresh", "deploy_converged"])
def test_two_relays_each_get_their_image_jail_and_tor_and_pf_redirects_both(fixture, fleet):
    result = plan_two(fixture, fleet)
    commands = commands_of(result)
    names = [op.name for op in result.operations]
    # the second relay's own vault: its image made once, GELI on its own md unit, its passphrase on stdin
    made = [command for command in commands if "/var/jails/tor2.img" in command and "geli init" in command]
    assert len(made) == 1 and made[0].endswith(STDIN_MARK) and "md11" in made[0]
    assert "jail -f /etc/jail.conf.d/tor2.conf -c tor2" in commands
    assert "Jail root md11.eli on /var/jails/tor2" in names
    # both addresses on lo1, numbered in the list's order, the interface created at most once
    assert (("sysrc -f /etc/rc.conf cloned_interfaces=lo1 'ifconfig_lo1_alias0=inet 10.0.0.1/32' "
             "'ifconfig_lo1_alias1=inet 10.0.0.2/32' jail_enable=YES") if fixture == "deploy_fresh" else
            "sysrc -f /etc/rc.conf 'ifconfig_lo1_alias1=inet 10.0.0.2/32'") in commands
    assert sum(command.count("ifconfig lo1 create") for command in commands) == (fixture == "deploy_fresh")
    assert any("ifconfig lo1 inet 10.0.0.2/32 alias" in command for command in commands)
    # tor2's own torrc, and one pf.conf that redirects each relay's ports to its own jail
    assert any("/var/jails/tor2/usr/local/etc/tor/torrc" in command for command in commands)
    assert names.index("Start jail tor2") > names.index("lo1 with 10.0.0.1, 10.0.0.2")
    assert "pf.conf (checked by pfctl -nf)" in names
    settings = build_settings("server", as_list({**server(fixture)["data"], **fleet}, LISTED, SECOND))
    pf_conf = render_file(settings.with_ext_if("vtnet0"), "pf.conf.j2")
    for rule in ("rdr on $ext_if inet proto tcp from any to $ext_ip port $relay_ports -> $jail_ip",
                 "rdr on $ext_if inet proto tcp from any to $ext_ip port $relay_ports2 -> $jail_ip2",
                 "nat on $ext_if inet from $jail_ip2 to any -> $ext_ip",
                 "block in quick log on lo0 from $jail_ip2 to ! $jail_ip2",
                 "pass in on $ext_if inet proto tcp from any to $jail_ip2 port $relay_ports2 flags S/SA keep state"):
        assert rule in pf_conf.splitlines()
    assert 'jail_ip2 = "10.0.0.2"' in pf_conf and 'relay_ports2 = "{ 9002 }"' in pf_conf


def test_a_second_relay_added_to_a_converged_host_never_touches_the_first_image(fleet):
    """Going from one relay to two: the first relay's image, GELI provider and mount are left as they are."""
    result = plan_two("deploy_converged", fleet)
    first = [command for command in commands_of(result)
             if re.search(r"md10(?![0-9])|/var/jails/tor\.img|/var/jails/tor(?![0-9])\b", command)
             and any(word in command for word in ("mdconfig", "geli", "newfs", "truncate", "dd ", "mount "))]
    assert first == []
    vault_ops = [op for op in result.operations if op.name in ("Jail root md10.eli on /var/jails/tor",
                                                                "Mount point /var/jails/tor")]
    assert vault_ops and all(op.noops or not op.commands for op in vault_ops)


def test_one_passphrase_is_asked_for_every_relay_of_a_host(fleet, monkeypatch):
    """The relays that share the host's passphrase settings share one prompt (here: one read of the source)."""
    asked = []
    real = secrets._validated
    monkeypatch.setattr(secrets, "_validated", lambda *args: asked.append(args[0]) or real(*args))
    plan_two("deploy_fresh", fleet)
    assert asked == ["server"]


SERVICE = {**ONION, "service_packages": ["nginx"], "service_rc": ["nginx"]}


def web_facts():
    """What the onion-service jail's steps ask beyond a relay's: its service's package, not installed yet."""
    return {"pkg.JailPackages": {f"jail_name=web, root=/var/jails/web, running={running}": []
                                 for running in (True, False)}}


@pytest.mark.parametrize("fixture", ["deploy_fresh", "deploy_converged"])
def test_an_onion_service_gets_its_image_jail_tor_and_services_and_nothing_on_the_public_address(fixture, fleet):
    result = plan_jails(fixture, fleet, LISTED, SECOND, SERVICE, facts=web_facts())
    commands = commands_of(result)
    names = [op.name for op in result.operations]
    made = [command for command in commands if "/var/jails/web.img" in command and "geli init" in command]
    assert len(made) == 1 and made[0].endswith(STDIN_MARK) and "md12" in made[0]
    assert "env ASSUME_ALWAYS_YES=yes pkg -r /var/jails/web install -y nginx" in commands
    assert "env ASSUME_ALWAYS_YES=yes pkg -r /var/jails/web install -y tor" in commands
    assert "torrc of the onion service (checked by tor --verify-config in the jail)" in names
    assert "jail -f /etc/jail.conf.d/web.conf -c web" in commands
    assert any("'ifconfig_lo1_alias2=inet 10.0.0.3/32'" in command for command in commands)
    settings = build_settings("server", as_list({**server(fixture)["data"], **fleet}, LISTED, SECOND, SERVICE))
    [web] = settings.onion_services
    torrc = render_file(web, "torrc-onion.j2").splitlines()
    assert "HiddenServiceDir /var/db/tor/onion" in torrc and "HiddenServicePort 80 10.0.0.3:80" in torrc
    assert not [line for line in torrc if line.startswith(("ORPort", "DirPort", "Nickname", "ExitPolicy"))]
    assert 'nginx_enable="YES"' in render_file(web, "jail-rc.conf.j2").splitlines()
    pf_conf = render_file(settings.with_ext_if("vtnet0"), "pf.conf.j2").splitlines()
    assert 'jail_ip3 = "10.0.0.3"' in pf_conf and "nat on $ext_if inet from $jail_ip3 to any -> $ext_ip" in pf_conf
    assert "block in quick log on lo0 from $jail_ip3 to ! $jail_ip3" in pf_conf
    assert not [line for line in pf_conf if "$jail_ip3" in line and line.startswith(("rdr", "pass"))]


def like_the_first_jail(facts, names):
    """The fixture's facts with each other jail in the state the fixture describes for the first."""
    return other_jails_as(facts, names, facts)


def test_one_unlock_opens_every_jail_of_the_host_with_one_passphrase():
    """After a reboot every image is locked: unlock.py attaches each (the passphrase on standard input) and starts
    each jail, the onion service's with the relays'."""
    loaded = server("unlock_locked")
    data = as_list({**loaded["data"], **FLEET}, LISTED, SECOND, SERVICE)
    result = plan(TOOLS / "unlock.py", data=data, facts=like_the_first_jail(loaded["facts"], ("tor2", "web")))
    commands = commands_of(result)
    for unit, name in ((10, "tor"), (11, "tor2"), (12, "web")):
        attached = [command for command in commands if f"/var/jails/{name}.img" in command and f"{unit}" in command
                    and "geli attach" in command]
        assert len(attached) == 1 and attached[0].endswith(STDIN_MARK), commands
        assert f"jail -f /etc/jail.conf.d/{name}.conf -c {name}" in commands


def test_lock_locks_every_jail_of_the_host():
    loaded = server("unlock_running")
    data = as_list({**loaded["data"], **FLEET}, LISTED, SECOND, SERVICE)
    result = plan(TOOLS / "lock.py", data=data, facts=like_the_first_jail(loaded["facts"], ("tor2", "web")))
    names = [op.name for op in result.operations]
    for unit, name in ((10, "tor"), (11, "tor2"), (12, "web")):
        assert f"Lock md{unit}.eli" in names and f"Detach md{unit} from /var/jails/{name}.img" in names, names


def test_a_listed_relay_not_named_tor_on_a_host_with_flat_records_stops_the_deploy(fleet, planned_operations):
    """The flat relay's records (here its fingerprint) are in secrets_dir/HOST/: a list naming no jail tor would
    leave them behind and start a new identity; the deploy stops first, naming the setting."""
    kept = Path(fleet["secrets_dir"]) / "server"
    kept.mkdir(parents=True)
    (kept / "fingerprint").write_text("TestRelay 0123456789ABCDEF0123456789ABCDEF01234567\n")
    loaded = server("deploy_converged")
    renamed = {**LISTED, "jail_name": "relay1"}
    with pytest.raises(PyinfraError, match="setting 'jails': secrets_dir holds the records of this host's relay"):
        plan(DEPLOY, data=as_list({**loaded["data"], **fleet}, renamed, SECOND), facts=loaded["facts"])
    assert planned_operations == []


def test_a_backup_of_the_second_relay_is_restored_into_its_own_jail_only(fleet, tmp_path, monkeypatch):
    """TORJAIL_RESTORE names one relay's backup (HOST/JAIL for a listed relay not named tor): its keys go into
    that relay's jail before its tor first starts, the other relay makes its own identity."""
    from pyrage import x25519

    from torjail import backups, identity

    age_key = x25519.Identity.generate()
    monkeypatch.setenv(identity.IDENTITY_ENV, str(age_key))
    data = as_list({**server("deploy_fresh")["data"], **fleet, "age_recipient": str(age_key.to_public())},
                   LISTED, SECOND)
    [_, tor2] = build_settings("server", data).relays
    keys = {"secret_id_key": b"-----BEGIN RSA PRIVATE KEY-----\nplan test rsa identity\n"}
    made = backups.write(tor2, backups.make(tor2, keys, "0123456789ABCDEF0123456789ABCDEF01234567",
                                            "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcde", b"GEOM::ELI" + bytes(503)))
    assert made.parent == Path(fleet["secrets_dir"]) / "server" / "jails" / "tor2"
    monkeypatch.setenv("TORJAIL_RESTORE", str(made))
    names = "names=('secret_id_key', 'ed25519_master_id_secret_key', 'ed25519_master_id_public_key')"
    digests = {"torkeys.KeyDigests": {f"directory=/var/db/tor/keys, jail_name={jail}, {names}, root=/var/jails/{jail}, running=False": {}
                                      for jail in ("tor", "tor2")}}
    result = plan(DEPLOY, data=data, facts=with_fresh_jails(_merge_facts(server("deploy_fresh")["facts"],
                                                                          {**family_facts(), **digests})))
    (restore,) = [op for op in result.operations if op.name.startswith("Key files of the backup")]
    assert all("R=/var/jails/tor2;" in command for command in restore.commands)
    names = [op.name for op in result.operations]
    assert names.index("Start jail tor") < names.index(restore.name) < names.index("Start jail tor2")


def test_a_backup_of_no_relay_of_the_host_stops_the_deploy(fleet, monkeypatch, planned_operations):
    from pyrage import x25519

    from torjail import backups, identity

    age_key = x25519.Identity.generate()
    monkeypatch.setenv(identity.IDENTITY_ENV, str(age_key))
    base = {**server("deploy_fresh")["data"], **fleet, "age_recipient": str(age_key.to_public())}
    [_, gone] = build_settings("server", as_list(base, LISTED, {**SECOND, "jail_name": "tor9"})).relays
    made = backups.write(gone, backups.make(gone, {"secret_id_key": b"rsa"}, "0123456789ABCDEF0123456789ABCDEF01234567",
                                            "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcde", b"GEOM::ELI" + bytes(503)))
    monkeypatch.setenv("TORJAIL_RESTORE", str(made))
    with pytest.raises(PyinfraError, match=r"is the backup of server/tor9, not of server or server/tor2; nothing "
                                           r"was changed"):
        plan(DEPLOY, data=as_list(base, LISTED, SECOND),
             facts=with_fresh_jails(_merge_facts(server("deploy_fresh")["facts"], family_facts())))
    assert planned_operations == []


def taken_off_the_list(running):
    """deploy_converged's facts after tor2 was deployed beside tor and then taken off the list: its image still
    attached, its address at boot, its jail running or stopped."""
    facts = copy.deepcopy(server("deploy_converged")["facts"])
    if running:
        facts["jail.Jails"]["tor2"] = {"jid": 2, "name": "tor2", "path": "/var/jails/tor2", "ip4.addr": ["10.0.0.2"],
                                       "securelevel": 3}
    facts["md.MdDevices"]["md11"] = {"type": "vnode", "size": "8192M", "file": "/var/jails/tor2.img"}
    facts["rc.RcConf"]["jail=None, path=/etc/rc.conf"]["ifconfig_lo1_alias1"] = "inet 10.0.0.2/32"
    return facts


def test_a_jail_taken_off_the_list_that_still_runs_stops_the_deploy(planned_operations):
    """pf.conf keeps only listed jails off the host's services: one that runs unlisted must be stopped first."""
    with pytest.raises(PyinfraError, match=r"server: setting 'jails': jail tor2 runs on the server but is not "
                                           r"listed; nothing was changed.*stop it first \(jail -r tor2"):
        plan(DEPLOY, data=as_list(server("deploy_converged")["data"], LISTED), facts=taken_off_the_list(True))
    assert planned_operations == []


def test_what_a_stopped_jail_taken_off_the_list_left_is_said_and_left_as_it_is(caplog):
    """Its attached image and its address at boot are named, and nothing planned touches them."""
    result = plan(DEPLOY, data=as_list(server("deploy_converged")["data"], LISTED), facts=taken_off_the_list(False))
    warned = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    for leftover in ("md11 holds /var/jails/tor2.img, the image of no listed jail",
                     '/etc/rc.conf gives lo1 ifconfig_lo1_alias1="inet 10.0.0.2/32" at boot, past the 1 listed'):
        assert [message for message in warned if message.startswith(f"server: {leftover}")
                and "left as it is" in message], warned
    touching = [command for command in commands_of(result) if "tor2" in command or "md11" in command]
    assert touching == []


def test_a_host_whose_jails_are_all_listed_is_told_nothing_left_behind(fleet, caplog):
    plan_two("deploy_converged", fleet)
    assert not [record for record in caplog.records if "left as it is" in record.getMessage()]


def converged_jails(names=("tor2", "web")):
    """deploy_converged's facts with every other jail in the first one's converged state: its image attached and
    unlocked, its jail running, its files in place."""
    facts = like_the_first_jail(server("deploy_converged")["facts"], names)
    for offset, name in enumerate(names, start=1):
        unit = 10 + offset
        facts["geli.GeliProviders"][f"md{unit}.eli"] = {**facts["geli.GeliProviders"]["md10.eli"],
                                                      "consumer": f"md{unit}"}
        facts["md.MdDevices"][f"md{unit}"] = {"type": "vnode", "size": "8192M", "file": f"/var/jails/{name}.img"}
        facts["jail.Jails"][name] = {"jid": 1 + offset, "name": name, "path": f"/var/jails/{name}",
                                     "ip4.addr": [f"10.0.0.{1 + offset}"], "securelevel": 3}
        image = facts["image.ImageFiles"][f"path=/var/jails/{name}.img"]
        image["image"] = {**image["image"], "md_unit": f"md{unit}"}
        facts["mount.MountPoints"][f"/var/jails/{name}"] = {"device": f"/dev/md{unit}.eli", "type": "ufs",
                                                             "options": ["rw"]}
        facts["mount.MountPoints"][f"/var/jails/{name}/dev"] = {"device": "devfs", "type": "devfs", "options": ["rw"]}
    return facts


def test_a_converged_host_of_several_jails_is_read_in_one_survey(fleet):
    """Every jail's questions are in the deploy's one survey command, the family's among them: a no-change
    re-run of a host of two relays of a family and an onion service waits for no round trip per fact."""
    data = as_list({**server("deploy_converged")["data"], **fleet}, LISTED, SECOND, SERVICE)
    facts = {**family_facts(), "pkg.JailPackages": {f"jail_name=web, root=/var/jails/web, running={running}":
                                                    ["tor", "nginx"] for running in (True, False)},
             "service.ServiceRunning": {"jail=web, service=nginx": True}}
    result = plan(DEPLOY, data=data, facts=_merge_facts(converged_jails(), facts))
    assert result.fixture.asked == []
