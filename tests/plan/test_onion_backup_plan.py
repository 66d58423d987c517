"""An onion service's backup and restore planned against fake servers: backup.py backs up every jail of a host,
the onion service's HiddenServiceDir and address beside the relays' keys, and refuses a service whose tor has no
key yet; deploy.py with TORJAIL_RESTORE of an onion service's backup places its keys in the HiddenServiceDir
before the service's tor first starts, on standard input and never over other keys, and refuses a backup of
another kind of jail before any change."""

import pytest
from harness import STDIN_MARK, plan
from pyinfra.api.command import FunctionCommand
from pyinfra.api.exceptions import PyinfraError
from test_deploy_plan import DEPLOY, _merge_facts, passphrase, planned_operations, server  # noqa: F401 (fixtures)
from test_jails_plan import LISTED, ONION, SECOND, as_list, family_facts, like_the_first_jail, with_fresh_jails
from test_restore_plan import ED25519, RSA, age_key  # noqa: F401 (a fixture)

from torjail import backups
from torjail.settings import build_settings

BACKUP = DEPLOY.parent / "backup.py"
ADDRESS = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
ONION_KEYS = {"hs_ed25519_secret_key": b"== ed25519v1-secret: type0 ==\0\0\0plan test onion secret",
              "hs_ed25519_public_key": b"== ed25519v1-public: type0 ==\0\0\0plan test onion public",
              "hostname": ADDRESS.encode() + b"\n"}
ONION_DIR = "/var/jails/web/var/db/tor/onion"


def host_data(fixture, tmp_path, age_key, *jails):
    return as_list({**server(fixture)["data"], "age_recipient": str(age_key.to_public()),
                    "secrets_dir": str(tmp_path / "secrets")}, *jails)


def converged_facts():
    """A converged host whose onion service runs on its unlocked image, its tor with keys and an address."""
    facts = like_the_first_jail(server("deploy_converged")["facts"], ("web",))
    facts["geli.GeliProviders"]["md12.eli"] = {**facts["geli.GeliProviders"]["md10.eli"], "consumer": "md12"}
    facts["md.MdDevices"]["md12"] = {"type": "vnode", "size": "8192M", "file": "/var/jails/web.img"}
    facts["jail.Jails"]["web"] = {"jid": 2, "name": "web", "path": "/var/jails/web", "ip4.addr": ["10.0.0.3"],
                                  "securelevel": 3}
    return _merge_facts(facts, {
        "torkeys.KeyFiles": {"path=/var/jails/tor/var/db/tor/keys": ["secret_id_key"],
                             f"path={ONION_DIR}": sorted(ONION_KEYS)},
        "torkeys.Fingerprints": {"jail_name=tor": {"rsa": f"Test {RSA}", "ed25519": f"Test {ED25519}"}},
        "torkeys.OnionAddress": {"jail_name=web": ADDRESS}})


def test_backup_fetches_every_jail_and_reads_only_when_pyinfra_executes(tmp_path, age_key):
    data = host_data("deploy_converged", tmp_path, age_key, LISTED, ONION)
    result = plan(BACKUP, data=data, facts=converged_facts())
    assert [op.name for op in result.operations] == [
        "Backup of tor's keys and the GELI metadata of md10", "Backup of web's keys and the GELI metadata of md12"]
    commands = [command for commands in result.pyinfra_commands() for command in commands]
    assert len(commands) == 2 and all(isinstance(command, FunctionCommand) for command in commands)
    assert commands[1].args[1] == {"onion_address": ADDRESS}  # what the backup is checked against when it is made
    assert not (tmp_path / "secrets").exists()  # planned (or --dry): nothing written


def test_backup_of_an_onion_service_whose_tor_made_no_key_yet_stops_before_any_read(tmp_path, age_key):
    facts = _merge_facts(converged_facts(), {"torkeys.KeyFiles": {f"path={ONION_DIR}": []}})
    with pytest.raises(PyinfraError, match=f"server: tor in jail web has no identity key yet "
                                           f"\\({ONION_DIR}/hs_ed25519_secret_key\\); nothing was written"):
        plan(BACKUP, data=host_data("deploy_converged", tmp_path, age_key, LISTED, ONION), facts=facts)


def test_backup_of_an_onion_service_without_an_address_stops(tmp_path, age_key):
    facts = _merge_facts(converged_facts(), {"torkeys.OnionAddress": {"jail_name=web": "not-an-address"}})
    with pytest.raises(PyinfraError, match="server: jail web: /var/db/tor/onion/hostname does not hold an onion "
                                           "address: 'not-an-address'; nothing was written"):
        plan(BACKUP, data=host_data("deploy_converged", tmp_path, age_key, LISTED, ONION), facts=facts)


def onion_backup(tmp_path, age_key, kind="onion-service"):
    """A backup file of the onion service server/web (or of a relay of that name, with kind="relay")."""
    relay = {**SECOND, "jail_name": "web", "jail_ip": "10.0.0.3", "md_unit": 12}
    data = host_data("deploy_fresh", tmp_path, age_key, LISTED, ONION if kind == "onion-service" else relay)
    [_, web] = build_settings("server", {**data, "family": "fleet"}).jail_settings
    if kind == "onion-service":
        made = backups.make_onion(web, ONION_KEYS, ADDRESS, b"GEOM::ELI" + bytes(503))
    else:
        made = backups.make(web, {"secret_id_key": b"rsa"}, RSA, ED25519, b"GEOM::ELI" + bytes(503))
    return backups.write(web, made)


def digests(held, running=False):
    names = "names=('hs_ed25519_secret_key', 'hs_ed25519_public_key')"
    return {"torkeys.KeyDigests": {f"directory=/var/db/tor/onion, jail_name=web, {names}, root=/var/jails/web, "
                                   f"running={running}": held}}


def plan_fresh(tmp_path, age_key, facts):
    loaded = server("deploy_fresh")
    data = host_data("deploy_fresh", tmp_path, age_key, LISTED, ONION)
    return plan(DEPLOY, data=data,
                facts=with_fresh_jails(_merge_facts(loaded["facts"], {**family_facts(), **facts}), ("web",)))


def test_an_onion_backup_is_restored_into_the_service_before_its_tor_first_starts(tmp_path, age_key, monkeypatch):
    path = onion_backup(tmp_path, age_key)
    assert path.parent == tmp_path / "secrets" / "server" / "jails" / "web"
    monkeypatch.setenv("TORJAIL_RESTORE", str(path))
    result = plan_fresh(tmp_path, age_key, digests({}))
    (restore,) = [op for op in result.operations if op.name.startswith("Key files of the backup")]
    assert "the onion service's HiddenServiceDir" in restore.name
    names = [op.name for op in result.operations]
    assert names.index("Start jail tor") < names.index(restore.name) < names.index("Start jail web")
    written = [command for command in restore.commands if "base64 -d" in command]
    assert len(written) == len(ONION_KEYS) and all(command.endswith(STDIN_MARK) for command in written)
    assert all("R=/var/jails/web;" in command for command in restore.commands)
    for command in written[:2]:  # the service's keys first, never over other keys: checked again on the server
        assert '"$R"/var/db/tor/onion/hs_ed25519_' in command and "cmp -s" in command
    assert '"$R"/var/db/tor/onion/hostname.torjail-new' in written[2]
    assert "umask 077 && mkdir -p \"$R\"/var/db/tor/onion && chown 256:256" in restore.commands[0]


def test_an_onion_service_holding_other_keys_stops_the_restore_before_any_change(tmp_path, age_key, monkeypatch,
                                                                                 planned_operations):
    monkeypatch.setenv("TORJAIL_RESTORE", str(onion_backup(tmp_path, age_key)))
    with pytest.raises(PyinfraError, match=r"the onion service already holds other keys \(hs_ed25519_secret_key "
                                           r"in /var/jails/web/var/db/tor/onion differ from the backup's\); nothing "
                                           r"was changed"):
        plan_fresh(tmp_path, age_key, digests({"hs_ed25519_secret_key": "0" * 64}))
    assert planned_operations == []


def test_an_onion_service_that_holds_the_backups_keys_gets_nothing(tmp_path, age_key, monkeypatch):
    monkeypatch.setenv("TORJAIL_RESTORE", str(onion_backup(tmp_path, age_key)))
    same = {name: digest for name, digest in backups.make_onion(
        build_settings("server", host_data("deploy_fresh", tmp_path, age_key, LISTED, ONION)).onion_services[0],
        ONION_KEYS, ADDRESS, b"").digests().items() if name.startswith("hs_")}
    result = plan_fresh(tmp_path, age_key, digests(same))
    assert not [op for op in result.operations if op.name.startswith("Key files of the backup")]


def test_a_relays_backup_for_an_onion_service_jail_stops_before_any_change(tmp_path, age_key, monkeypatch,
                                                                           planned_operations):
    monkeypatch.setenv("TORJAIL_RESTORE", str(onion_backup(tmp_path, age_key, kind="relay")))
    with pytest.raises(PyinfraError, match="is the backup of a jail of kind 'relay', but server/web is of kind "
                                           "'onion-service'; nothing was changed"):
        plan_fresh(tmp_path, age_key, digests({}))
    assert planned_operations == []
