"""The SSH connection of a planned host, as far as its host key goes: pyinfra's SSH connector holds a paramiko
client whose transport presents the server's key."""

import paramiko
from pyinfra.connectors.ssh import SSHConnector


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
