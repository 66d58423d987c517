"""End to end on a lab host, through the real pyinfra CLI over real SSH: deploy a fresh server, converge, preview a
change, reboot (locked), unlock with a wrong and then the right passphrase, lock at once and unlock again.

The tests run in file order on one lab host: each step starts from the state the previous one left.
"""

import re

import pytest

from relay import PASSPHRASE, changes, relay_host

pytestmark = pytest.mark.lab

TORRC = "/var/jails/tor/usr/local/etc/tor/torrc"


@pytest.fixture(scope="module")
def relay():
    with relay_host("e2e", 4) as relay:
        yield relay


def _jails(relay):
    return relay.run("jls name")[1].split()


def _listening(relay):
    return relay.run("sockstat -4 -l")[1]


def _digest(relay, path):
    status, output, _ = relay.run(f"sha256 -q {path}")
    assert status == 0, path
    return output.strip()


def test_fresh_server_becomes_a_relay(relay):
    """The whole deploy on a fresh server, at full verbosity: tor runs in the jail on the encrypted image."""
    result = relay.pyinfra("deploy.py", "-vvv")
    assert result.returncode == 0, result.stdout[-5000:]
    assert changes(result.stdout) > 20
    assert "name=tor" in relay.run("jls -n name")[1]
    listening = _listening(relay)
    assert "10.0.0.1:9001" in listening and "10.0.0.1:9030" in listening
    assert "md10.eli" in relay.run("geli status")[1]
    assert relay.run("pfctl -s info")[1].startswith("Status: Enabled")
    assert PASSPHRASE not in result.stdout, "the passphrase appeared in pyinfra's output at -vvv"


def test_passphrase_is_nowhere_on_the_server(relay):
    """Neither the commands nor any file on the server's disk hold the passphrase (grep reads it from stdin)."""
    status, output, _ = relay.run("grep -r -l -F -f /dev/stdin /etc /var /root /tmp /usr/local 2>/dev/null; true",
                                  input=PASSPHRASE + "\n")
    assert output.strip() == ""
    assert not relay.run("ls /var/backups/*.eli 2>/dev/null")[1].strip(), "a GELI metadata backup was left on disk"


def test_second_deploy_changes_nothing_and_asks_the_server_once(relay):
    """A converged relay: no change, and one remote command in all (pyinfra -v lists every fact it reads: no
    operation sends one when nothing changes): the survey, which takes the deploy lock first."""
    result = relay.pyinfra("deploy.py", "-v")
    assert result.returncode == 0, result.stdout[-5000:]
    assert changes(result.stdout) == 0, result.stdout[-5000:]
    assert re.findall(r"Loaded fact \S*\.(\w+)", result.stdout) == ["Survey"], result.stdout[-5000:]


def test_dry_run_shows_the_diff_of_a_settings_change_and_changes_nothing(relay):
    before = {path: _digest(relay, path) for path in (TORRC, "/etc/pf.conf")}
    # without -y, as an operator previews: pyinfra detects the changes (the diffs) and the dry run stops there
    result = relay.pyinfra("deploy.py", "--dry", "--diff", yes=False,
                           settings={"bandwidth_rate": "3 MBytes",
                                     "admin_networks": ["198.18.0.0/15", "192.0.2.0/24"]})
    assert result.returncode == 0, result.stdout[-5000:]
    assert "+ RelayBandwidthRate 3 MBytes" in result.stdout
    assert "+ table <admins> const { 198.18.0.0/15, 192.0.2.0/24 }" in result.stdout
    assert "- table <admins> const { 198.18.0.0/15 }" in result.stdout
    assert {path: _digest(relay, path) for path in before} == before
    assert "RelayBandwidthRate" not in relay.run(f"cat {TORRC}")[1]


def test_reboot_locks_the_image_and_stops_the_jail(relay):
    relay.reboot()
    assert _jails(relay) == []
    assert "md10.eli" not in relay.run("geli status")[1]
    assert "/var/jails/tor" not in relay.run("mount -p")[1]
    result = relay.pyinfra("deploy.py")
    assert result.returncode != 0
    assert "is locked" in result.stdout and "unlock.py" in result.stdout


def test_wrong_passphrase_changes_nothing(relay):
    state = [relay.run(command)[1] for command in ("mdconfig -l", "geli status", "jls", "mount -p")]
    result = relay.pyinfra("unlock.py", passphrase="not the passphrase")
    assert result.returncode != 0
    assert "Wrong key for md10" in result.stdout and "nothing was changed" in result.stdout
    assert [relay.run(command)[1] for command in ("mdconfig -l", "geli status", "jls", "mount -p")] == state


def test_unlock_starts_the_relay(relay):
    result = relay.pyinfra("unlock.py")
    assert result.returncode == 0, result.stdout[-5000:]
    assert _jails(relay) == ["tor"]
    listening = _listening(relay)
    assert "10.0.0.1:9001" in listening and "10.0.0.1:9030" in listening
    again = relay.pyinfra("unlock.py")
    assert again.returncode == 0 and changes(again.stdout) == 0


def test_deploy_after_unlock_changes_nothing(relay):
    result = relay.pyinfra("deploy.py")
    assert result.returncode == 0, result.stdout[-5000:]
    assert changes(result.stdout) == 0, result.stdout[-5000:]


def test_lock_locks_the_vault_at_once(relay):
    """lock.py: as after a reboot, without one: the jail stopped, the image's root unmounted, GELI and md detached."""
    result = relay.pyinfra("lock.py")
    assert result.returncode == 0, result.stdout[-5000:]
    assert changes(result.stdout) == 3, result.stdout[-5000:]
    assert _jails(relay) == []
    assert "md10.eli" not in relay.run("geli status")[1]
    assert "md10" not in relay.run("mdconfig -l")[1].split()
    assert "/var/jails/tor" not in relay.run("mount -p")[1]
    again = relay.pyinfra("lock.py")
    assert again.returncode == 0 and changes(again.stdout) == 0, again.stdout[-5000:]


def test_unlock_after_lock_brings_back_the_same_relay(relay):
    result = relay.pyinfra("unlock.py")
    assert result.returncode == 0, result.stdout[-5000:]
    assert _jails(relay) == ["tor"]
    result = relay.pyinfra("deploy.py")
    assert result.returncode == 0, result.stdout[-5000:]
    assert changes(result.stdout) == 0, result.stdout[-5000:]
