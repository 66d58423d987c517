"""The SSH host key record: the key the live connection presents, its record on the operator's machine (0600 in
0700, never overwritten), fingerprints as ssh-keygen prints them, and the stops of deploy and unlock."""

import logging
import re
import stat
import subprocess

import paramiko
import pytest

from torjail import hostkey
from torjail.settings import build_settings

BASE = {"relay_nickname": "Pinned", "relay_contact": "ops@example.org", "public_ipv4": "198.51.100.7",
        "identity": "on-relay"}


def ed25519_key(seed):
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes((seed + i) % 256 for i in range(32))
    return paramiko.Ed25519Key(data=blob)


class FakeTransport:
    def __init__(self, key, active=True):
        self.key = key
        self.active = active

    def is_active(self):
        return self.active

    def get_remote_server_key(self):
        return self.key


class FakeClient:
    def __init__(self, transport):
        self.transport = transport

    def get_transport(self):
        return self.transport


class FakeConnector:
    def __init__(self, key, active=True):
        self.client = FakeClient(FakeTransport(key, active))


class LocalConnector:
    """A connector without SSH, as pyinfra's @local."""


@pytest.fixture
def settings(tmp_path):
    return build_settings("relay1", {**BASE, "secrets_dir": str(tmp_path / "secrets" / "torjail")})


def as_line(key):
    return f"{key.get_name()} {key.get_base64()}"


def test_fingerprint_is_the_one_ssh_keygen_prints(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(tmp_path / "key")],
                   check=True, timeout=30)
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(tmp_path / "key.pub")], capture_output=True, text=True,
                            check=True, timeout=30).stdout.split()[1]
    key = paramiko.Ed25519Key(filename=str(tmp_path / "key"))
    assert hostkey.fingerprint(key.asbytes()) == listed


def test_presented_key_is_the_live_transport_s():
    key = ed25519_key(1)
    assert hostkey.presented_key(FakeConnector(key)) == ("ssh-ed25519", key.asbytes())


@pytest.mark.parametrize("connector", [LocalConnector(), FakeConnector(ed25519_key(1), active=False)],
                         ids=["not SSH", "connection closed"])
def test_no_presented_key_without_a_live_ssh_connection(connector):
    assert hostkey.presented_key(connector) is None


def test_first_deploy_records_the_key_privately(settings, caplog):
    key = ed25519_key(1)
    caplog.set_level(logging.INFO)
    hostkey.pinned(settings, FakeConnector(key))
    path = hostkey.record_path(settings)
    assert path.read_text() == as_line(key) + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert f"recorded the server's SSH host key ssh-ed25519 {key.fingerprint} in {path}" in caplog.text
    hostkey.pinned(settings, FakeConnector(key))  # the same key again: nothing to say, nothing rewritten
    assert path.read_text() == as_line(key) + "\n"


def test_a_record_is_never_overwritten(settings):
    hostkey.record(settings, hostkey.presented_key(FakeConnector(ed25519_key(1))))
    with pytest.raises(FileExistsError):
        hostkey.record(settings, hostkey.presented_key(FakeConnector(ed25519_key(2))))
    assert hostkey.recorded_key(settings)[1] == ed25519_key(1).asbytes()


@pytest.mark.parametrize("check, outcome", [(hostkey.pinned, "nothing was changed"),
                                            (hostkey.verified, "the GELI passphrase was not sent")],
                         ids=["deploy", "unlock"])
def test_another_key_stops_naming_both_fingerprints_and_the_record(settings, check, outcome):
    old, new = ed25519_key(1), ed25519_key(2)
    hostkey.record(settings, hostkey.presented_key(FakeConnector(old)))
    path = hostkey.record_path(settings)
    with pytest.raises(hostkey.HostKeyError) as stopped:
        check(settings, FakeConnector(new))
    message = str(stopped.value)
    assert message.startswith("relay1: the server's SSH host key is not the one recorded at deploy time")
    assert f"{path} holds ssh-ed25519 {old.fingerprint}" in message
    assert f"the server presents ssh-ed25519 {new.fingerprint}" in message
    assert outcome in message
    assert f"ssh-keygen -l -f /etc/ssh/ssh_host_ed25519_key.pub), then remove {path} and deploy again" in message
    assert path.read_text() == as_line(old) + "\n"


def test_unlock_goes_on_with_the_recorded_key(settings):
    key = ed25519_key(1)
    hostkey.record(settings, hostkey.presented_key(FakeConnector(key)))
    hostkey.verified(settings, FakeConnector(key))


def test_unlock_without_a_record_stops_and_records_nothing(settings):
    key = ed25519_key(1)
    with pytest.raises(hostkey.HostKeyError, match=r"relay1: no SSH host key is recorded for this server \(.*"
                                                   r"ssh_host_key does not exist\).*the GELI passphrase was not sent"
                                                   rf".*presents ssh-ed25519 {re.escape(key.fingerprint)}: check it"):
        hostkey.verified(settings, FakeConnector(key))
    assert not hostkey.record_path(settings).exists()


def test_unlock_through_a_connector_without_ssh_refuses(settings):
    hostkey.record(settings, hostkey.presented_key(FakeConnector(ed25519_key(1))))
    with pytest.raises(hostkey.HostKeyError, match=r"relay1: the server's SSH host key cannot be checked through "
                                                   r"pyinfra's LocalConnector.*the GELI passphrase was not sent"):
        hostkey.verified(settings, LocalConnector())


def test_deploy_through_a_connector_without_ssh_says_so_and_records_nothing(settings, caplog):
    hostkey.pinned(settings, LocalConnector())
    assert "cannot be read through pyinfra's LocalConnector: it is neither checked nor recorded" in caplog.text
    assert not hostkey.record_path(settings).exists()


def test_a_record_pasted_from_a_pub_file_is_read(settings):
    key = ed25519_key(3)
    path = hostkey.record_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text(f"{as_line(key)} root@relay1\n")
    hostkey.verified(settings, FakeConnector(key))


@pytest.mark.parametrize("text", ["", "ssh-ed25519\n", "ssh-ed25519 not-base64!\n",
                                  f"ssh-rsa {ed25519_key(1).get_base64()}\n",
                                  f"{as_line(ed25519_key(1))}\n{as_line(ed25519_key(2))}\n"],
                         ids=["empty", "no key", "not base64", "type of another key", "two keys"])
def test_a_broken_record_stops_naming_the_file(settings, text):
    path = hostkey.record_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    expected = rf"relay1: {re.escape(str(path))} is not an SSH host key record \(setting 'secrets_dir'\)"
    with pytest.raises(hostkey.HostKeyError, match=expected):
        hostkey.verified(settings, FakeConnector(ed25519_key(1)))
