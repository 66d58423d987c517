"""TCP_NODELAY is set on the SSH socket under pyinfra's connector, and only on a real TCP socket."""

import socket

from torjail.connection import without_nagle


class FakeTransport:
    def __init__(self, sock):
        self.sock = sock


class FakeClient:
    def __init__(self, sock):
        self._transport = FakeTransport(sock)

    def get_transport(self):
        return self._transport


class FakeConnector:
    def __init__(self, sock):
        self.client = FakeClient(sock)


def test_sets_nodelay_on_a_tcp_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        assert without_nagle(FakeConnector(sock)) is True
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        sock.close()


def test_leaves_other_connectors_alone():
    class Local:
        pass

    assert without_nagle(Local()) is False
    assert without_nagle(FakeConnector(object())) is False
    unix_a, unix_b = socket.socketpair()
    try:
        assert without_nagle(FakeConnector(unix_a)) is False
    finally:
        unix_a.close()
        unix_b.close()


def test_nagle_stays_on_with_torjail_ssh_nagle(monkeypatch):
    monkeypatch.setenv("TORJAIL_SSH_NAGLE", "1")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        assert without_nagle(FakeConnector(sock)) is False
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    finally:
        sock.close()
