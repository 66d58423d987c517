"""End to end on a lab host: the deploy records the server's SSH host key on the operator's machine, and unlock.py
sends the GELI passphrase to nothing else. A server with new host keys, which SSH itself accepts (the operator
took the new key into known_hosts), gets no passphrase and stays locked; once the record is removed and a deploy
has recorded the new key, unlock works again.

The tests run in file order on one lab host: each step starts from the state the previous one left.
"""

import os
import stat
import subprocess

import pytest

from lab import paths
from relay import relay_host

pytestmark = pytest.mark.lab

NAME = "pin"
RECORD = os.path.join(paths.secrets_dir(NAME), NAME, "ssh_host_key")
SERVER_KEY = "/etc/ssh/ssh_host_ed25519_key.pub"


@pytest.fixture(scope="module")
def relay():
    with relay_host(NAME, 48) as relay:
        yield relay


def _server_key(relay):
    """The server's ed25519 public host key, 'TYPE BASE64'."""
    status, out, _ = relay.run(f"cat {SERVER_KEY}")
    assert status == 0
    return " ".join(out.split()[:2])


def _fingerprint(key_line):
    listed = subprocess.run(["ssh-keygen", "-l", "-f", "-"], input=key_line + "\n", capture_output=True, text=True,
                            check=True, timeout=30)
    return listed.stdout.split()[1]


def _record():
    with open(RECORD) as handle:
        return handle.read().strip()


def _locked(relay):
    """True when no trace of an unlock is on the server: no GELI provider, no md unit, no jail."""
    providers = relay.run("geli status")[1]
    units = relay.run("mdconfig -l")[1].split()
    jails = relay.run("jls name")[1].split()
    return "md10.eli" not in providers and "md10" not in units and "tor" not in jails


def test_deploy_records_the_server_host_key(relay):
    result = relay.pyinfra("deploy.py")
    assert result.returncode == 0, result.stdout[-5000:]
    assert _record() == _server_key(relay)
    assert stat.S_IMODE(os.stat(RECORD).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(RECORD)).st_mode) == 0o700
    assert _fingerprint(_record()) in result.stdout


def test_unlock_against_new_host_keys_sends_nothing(relay):
    relay.reboot()
    assert _locked(relay)
    old = _server_key(relay)
    status, out, err = relay.run("rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub && "
                                 "service sshd keygen >/dev/null && service sshd restart >/dev/null")
    assert status == 0, out + err
    new = _server_key(relay)
    assert new != old
    with open(paths.known_hosts_path(NAME), "w") as handle:  # the operator accepted the new key for SSH
        handle.write(f"{NAME},{relay.address} {new}\n")
    result = relay.pyinfra("unlock.py")
    assert result.returncode != 0
    assert "is not the one recorded at deploy time" in result.stdout, result.stdout[-5000:]
    assert _fingerprint(old) in result.stdout and _fingerprint(new) in result.stdout
    assert "the GELI passphrase was not sent" in result.stdout and RECORD in result.stdout
    assert _locked(relay)
    assert _record() == old


def test_a_deploy_after_the_record_is_removed_lets_unlock_work(relay):
    os.remove(RECORD)
    recorded = relay.pyinfra("deploy.py")
    assert recorded.returncode != 0 and "unlock.py` first" in recorded.stdout, recorded.stdout[-5000:]
    assert _record() == _server_key(relay)
    assert _locked(relay)
    result = relay.pyinfra("unlock.py")
    assert result.returncode == 0, result.stdout[-5000:]
    assert "tor" in relay.run("jls name")[1].split()
