"""Plan tests: whole deploy files planned against fake facts (see harness.py), on a server that presents the SSH
host key recorded for it."""

from __future__ import annotations

import sys
from pathlib import Path

import paramiko
import pytest
from pyinfra.connectors.ssh import SSHConnector

from torjail import hostkey

sys.path.insert(0, str(Path(__file__).parent))

from harness import plan  # noqa: E402

SAMPLES = Path(__file__).parent / "samples"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def plan_deploy():
    """plan(deploy_file, facts=..., data=..., fixture=...) -> Plan; see tests/plan/harness.py."""
    return plan


def ed25519_key(seed: int) -> paramiko.PKey:
    """A public ed25519 host key, the same for the same seed."""
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes((seed + i) % 256 for i in range(32))
    return paramiko.Ed25519Key(data=blob)


SERVER_KEY = ed25519_key(0)


class FakeTransport:
    def __init__(self, key):
        self.key = key

    def is_active(self):
        return True

    def get_remote_server_key(self):
        return self.key


class FakeClient:
    """What pyinfra's SSH connector holds once connected, as far as the host key goes."""

    def __init__(self, key):
        self.transport = FakeTransport(key)

    def get_transport(self):
        return self.transport


def server_presents(monkeypatch, key):
    """The planned host's SSH connection presents key (None: no connection, as with a connector that is not SSH)."""
    monkeypatch.setattr(SSHConnector, "client", None if key is None else FakeClient(key))


@pytest.fixture(autouse=True)
def known_server(tmp_path, monkeypatch):
    """Every plan runs against a server presenting the host key recorded at its first deploy, in the default
    secrets_dir under a home of the test's own; returns the record's path. A test about host keys changes either."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    server_presents(monkeypatch, SERVER_KEY)
    record = tmp_path / "home/.local/share/torjail/server" / hostkey.RECORD
    record.parent.mkdir(parents=True)
    record.write_text(f"{SERVER_KEY.get_name()} {SERVER_KEY.get_base64()}\n")
    return record
