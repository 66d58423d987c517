"""The benchmark's delaying relay (bench/wan.py) adds its round trip, keeps the bytes in order and counts round
trips: on loopback only, against an echo server of the test's own, each test bounded to a few seconds."""

import socket
import threading
import time

import pytest

from bench.wan import DelayRelay

ROUND_TRIP = 0.2


@pytest.fixture
def echo_server():
    """A loopback TCP server that sends back what it reads, one connection at a time; its (host, port)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(5)
                try:
                    while data := connection.recv(65536):
                        connection.sendall(data)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()
    stop.set()
    listener.close()
    thread.join(5)


def exchange(sock, data):
    sock.sendall(data)
    received = b""
    while len(received) < len(data):
        received += sock.recv(65536)
    return received


def test_one_exchange_takes_the_added_round_trip(echo_server):
    with DelayRelay(echo_server, ROUND_TRIP) as relay:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
            started = time.monotonic()
            assert exchange(sock, b"ping") == b"ping"
            elapsed = time.monotonic() - started
    assert ROUND_TRIP <= elapsed < ROUND_TRIP + 0.5


def test_bytes_sent_back_to_back_arrive_in_order_after_one_round_trip(echo_server):
    """Latency, not a bandwidth limit: chunks sent together arrive together, not one delay each."""
    payload = b"".join(f"{number:06d}".encode() for number in range(20000))
    with DelayRelay(echo_server, ROUND_TRIP) as relay:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
            started = time.monotonic()
            for start in range(0, len(payload), 1000):
                sock.sendall(payload[start:start + 1000])
            received = b""
            while len(received) < len(payload):
                received += sock.recv(65536)
            elapsed = time.monotonic() - started
    assert received == payload
    assert elapsed < 4 * ROUND_TRIP


def test_each_answered_request_counts_one_round_trip(echo_server):
    with DelayRelay(echo_server, 0.02) as relay:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
            for number in range(3):
                assert exchange(sock, b"request %d" % number) == b"request %d" % number
        assert relay.round_trips == 3


def test_the_relay_closes_its_connections_when_it_stops(echo_server):
    with DelayRelay(echo_server, 0.02) as relay:
        sock = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
        assert exchange(sock, b"x") == b"x"
    with sock:
        assert sock.recv(1) == b""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", relay.port), timeout=1).close()


def test_the_relay_stops_by_itself_after_its_lifetime(echo_server):
    relay = DelayRelay(echo_server, 0.02, lifetime=0.3)
    with relay:
        time.sleep(0.8)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", relay.port), timeout=1).close()
