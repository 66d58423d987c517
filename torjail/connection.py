"""SSH without Nagle's delay: TCP_NODELAY on pyinfra's SSH socket.

Neither pyinfra nor paramiko sets TCP_NODELAY, so every remote command waits out a Nagle / delayed-ACK stall
(about 40 ms) between its small packets; a deploy that runs a few hundred commands spends most of its time idle.
pyinfra connects before it loads a deploy file, so the deploy sets the option on the socket that the
connection already has, without touching pyinfra. Connectors without a TCP socket (local, chroot, ssh through a
ProxyCommand) are left as they are.

TORJAIL_SSH_NAGLE=1 in the environment leaves Nagle's algorithm on (pyinfra's own behaviour): the benchmark
measures the deploy both ways with it.
"""

import os
import socket


def tcp_socket(connector):
    """The TCP socket under a pyinfra SSH connector, or None (not connected, or not a plain TCP socket)."""
    client = getattr(connector, "client", None)
    get_transport = getattr(client, "get_transport", None)
    transport = get_transport() if get_transport else None
    sock = getattr(transport, "sock", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        return sock
    return None


def without_nagle(connector):
    """Set TCP_NODELAY on the connector's SSH socket; True when it is set (never with TORJAIL_SSH_NAGLE=1)."""
    if os.environ.get("TORJAIL_SSH_NAGLE") == "1":
        return False
    sock = tcp_socket(connector)
    if sock is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        return False
    return True
