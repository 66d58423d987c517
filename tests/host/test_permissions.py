"""Modes and owners of the files that hold the relay's secrets or its security settings: torrc in the jail, tor's
keys directory and every key in it (an onion service's: its HiddenServiceDir), /etc/pf.conf and the jail's
jail.conf.d file.

Expected values are the ones the deploy places (torjail.tasks, torjail.procedures.torkeys; tor gives the keys it
makes itself the same). A key readable by another user of the jail is a copy of the relay's identity; a torrc or
pf.conf writable by someone else than root changes the relay or the firewall at the next reload.
"""

import pytest

from host_checks import require_jail_root_mounted, settings_for_run
from torjail.procedures.torkeys import KEY_MODE, KEYS_DIRECTORY, KEYS_DIRECTORY_MODE, TOR_UID
from torjail.render import ONION_DIR
from torjail.tasks import firewall, jail, tor


def placed_files(settings):
    """(id, path, mode, user, group, in the jail root) of every file checked here; jail owners as numbers."""
    keys = [("keys", settings.jail_root + KEYS_DIRECTORY, KEYS_DIRECTORY_MODE, TOR_UID, TOR_UID, True)]
    return [
        ("torrc", settings.jail_root + tor.TORRC, tor.TORRC_MODE, tor.TORRC_OWNER, tor.TORRC_OWNER, True),
        *(keys if settings.kind == "relay" else []),  # an onion service's tor keeps its keys in ONION_DIR
        ("pf.conf", firewall.PF_CONF, firewall.PF_CONF_MODE, firewall.PF_CONF_USER, firewall.PF_CONF_GROUP, False),
        ("jail.conf", settings.jail_conf_path, jail.JAIL_CONF_MODE, jail.JAIL_CONF_USER, jail.JAIL_CONF_GROUP,
         False),
    ]


def pytest_generate_tests(metafunc):
    if "placed" in metafunc.fixturenames:
        settings = settings_for_run(metafunc.config)
        items = placed_files(settings) if settings else []
        metafunc.parametrize("placed", items, ids=[item[0] for item in items])


def observed(host, settings, placed):
    """The testinfra file of a placed path, after skipping when it lies in a jail root that is not mounted."""
    _, path, _, _, _, in_jail = placed
    if in_jail:
        require_jail_root_mounted(host, settings)
    found = host.file(path)
    assert found.exists, f"{path} is missing"
    return found


def owner_of(found, in_jail):
    """(user, group) as the deploy names them: numbers in the jail root (the host's passwd does not name the jail's
    users), names on the host."""
    return (str(found.uid), str(found.gid)) if in_jail else (found.user, found.group)


def test_mode(host, settings, placed):
    """A secret or a security setting readable or writable by more than the deploy allows is as good as handed over
    (a key), or open to rewriting (torrc, pf.conf, jail.conf)."""
    name, path, mode, _, _, _ = placed
    found = observed(host, settings, placed)
    assert found.mode == int(mode, 8), f"{path} has mode {found.mode:o}, the deploy places it {mode}"


def test_owner(host, settings, placed):
    """A file owned by another user is that user's to rewrite: a torrc owned by _tor lets tor change its own
    configuration for good; keys not owned by _tor stop tor."""
    name, path, _, user, group, in_jail = placed
    found = observed(host, settings, placed)
    assert owner_of(found, in_jail) == (user, group), \
        f"{path} is owned by {':'.join(owner_of(found, in_jail))}, the deploy places it {user}:{group}"


def key_files(host, settings):
    """Mode, uid and gid of every file of tor's keys directory, or of an onion service's HiddenServiceDir (stat
    -f: one command, however many keys)."""
    require_jail_root_mounted(host, settings)
    keys = settings.jail_root + (KEYS_DIRECTORY if settings.kind == "relay" else ONION_DIR)
    result = host.run("cd %s && for f in *; do [ -f \"$f\" ] && stat -f '%%N %%Lp %%u %%g' \"$f\"; done; true", keys)
    assert result.rc == 0, f"cannot list {keys}: {result.stderr}"
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
    if not rows:
        pytest.skip(f"{keys} holds no key yet (tor makes its keys at its first start)")
    return {name: (mode, uid, gid) for name, mode, uid, gid in rows}


def test_key_files_mode(host, settings):
    """A key readable by another user of the jail is a copy of the relay's identity (or its family's)."""
    wrong = {name: mode for name, (mode, _, _) in key_files(host, settings).items() if int(mode, 8) != int(KEY_MODE, 8)}
    assert not wrong, f"key files in {KEYS_DIRECTORY} whose mode is not {KEY_MODE}: {wrong}"


def test_key_files_owner(host, settings):
    """Keys belong to _tor: tor refuses to use keys it cannot read, and another owner may replace them."""
    wrong = {name: f"{uid}:{gid}" for name, (_, uid, gid) in key_files(host, settings).items()
             if (uid, gid) != (TOR_UID, TOR_UID)}
    assert not wrong, f"key files in {KEYS_DIRECTORY} not owned by {TOR_UID}:{TOR_UID}: {wrong}"
