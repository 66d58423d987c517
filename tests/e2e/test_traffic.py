"""End to end on a lab host: after a real deploy, real traffic from the machine side meets the relay's firewall.

tor's ORPort answers a TLS handshake and its DirPort an HTTP request through the public address (pf's rdr to the
jail), a port that is not allowed is dropped although something listens on it, sshd stays reachable, and the jail
reaches the machine through pf's nat. Every connection has a timeout; every listener is a bounded process bound to
the lab host's link, so no traffic leaves 198.18.0.0/15.
"""

import os
import signal
import socket
import ssl
import subprocess
import sys

import pytest

from lab import paths
from relay import relay_host

pytestmark = pytest.mark.lab

NAME, INDEX = "traffic", 2
TIMEOUT = 5
METRICS_PORT = 9035
# The machine side of the link may fetch tor's metrics; another address on the same link may not.
METRICS = {"metrics_port": METRICS_PORT, "metrics_networks": [f"{paths.gateway(INDEX)}/32"]}
OTHER_SOURCE = f"198.18.{INDEX}.9"
# One bounded TCP listener: answers each connection (at most 5) with "from PEER_ADDRESS:PEER_PORT", then exits,
# and exits anyway after its time limit. An optional device binds it to one interface.
LISTENER = r"""
import socket, sys, time
address, port, seconds, device = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if device:
    server.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
server.bind((address, port))
server.listen(4)
print("ready", flush=True)
deadline = time.monotonic() + seconds
for _ in range(5):
    server.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        conn, peer = server.accept()
    except socket.timeout:
        break
    conn.sendall(f"from {peer[0]}:{peer[1]}\n".encode())
    conn.close()
"""


@pytest.fixture(scope="module")
def relay():
    with relay_host(NAME, INDEX) as relay:
        result = relay.pyinfra("deploy.py", settings=METRICS)
        assert result.returncode == 0, result.stdout[-5000:]
        yield relay


@pytest.fixture
def listener():
    """Start bounded listeners: listener(address, port, netns=None, device=""); all are killed afterwards."""
    processes = []

    def start(address, port, netns=None, device=""):
        prefix = ["ip", "netns", "exec", netns] if netns else []
        process = subprocess.Popen(prefix + [sys.executable, "-c", LISTENER, address, str(port), "60", device],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        processes.append(process)
        line = process.stdout.readline().strip()
        assert line == "ready", process.stderr.read()

    yield start
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _attempt(address, port, source=None):
    """What one connection attempt from the machine meets: the first line it reads, "timeout" or "refused"."""
    try:
        with socket.create_connection((address, port), timeout=TIMEOUT,
                                      source_address=(source, 0) if source else None) as conn:
            conn.settimeout(TIMEOUT)
            return conn.recv(200).decode(errors="replace").strip()
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"


def test_orport_answers_a_tls_handshake_on_the_public_address(relay):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE          # tor's link certificate is self-signed by design
    with socket.create_connection((relay.address, 9001), timeout=TIMEOUT) as raw:
        with context.wrap_socket(raw) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            certificate = tls.getpeercert(binary_form=True)
    assert certificate and certificate[0] == 0x30, "no DER certificate from tor's ORPort"


def test_dirport_answers_http_with_the_relay_descriptor(relay):
    with socket.create_connection((relay.address, 9030), timeout=TIMEOUT) as conn:
        conn.settimeout(TIMEOUT)
        conn.sendall(f"GET /tor/server/authority HTTP/1.0\r\nHost: {relay.address}\r\n\r\n".encode())
        answer = b""
        while len(answer) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    text = answer.decode(errors="replace")
    status = text.split("\r\n", 1)[0]
    assert status.startswith("HTTP/1.0 "), text[:500]
    assert status == "HTTP/1.0 200 OK", status
    # tor's own descriptor: the nickname and the public address, though tor itself listens on the jail address
    assert f"\nrouter TorjailLab{INDEX} {relay.address} 9001 " in text, text[:1000]


def test_a_port_that_is_not_allowed_is_dropped_although_something_listens(relay, listener):
    listener(relay.address, 8080, netns=paths.netns_name(NAME))
    assert _attempt(relay.address, 8080) == "timeout"
    # the listener is there: from inside the lab host (pf passes the host's own lo0 traffic) it answers
    status, output, _ = relay.run(f"nc -w {TIMEOUT} {relay.address} 8080 </dev/null")
    assert output.startswith(f"from {relay.address}:"), (status, output)


def test_sshd_stays_reachable(relay):
    assert _attempt(relay.address, 22).startswith("SSH-2.0-")
    status, output, _ = relay.run("pfctl -s info")
    assert status == 0 and output.startswith("Status: Enabled")


def test_the_jail_reaches_out_through_nat(relay, listener):
    gateway = paths.gateway(INDEX)
    listener(gateway, 8081, device=paths.veth_name(INDEX))
    status, output, err = relay.run(f"jexec tor nc -w {TIMEOUT} {gateway} 8081 </dev/null")
    assert status == 0, err
    # the machine saw the host's public address (nat), not the jail's 10.0.0.1, which it has no route back to
    assert output.startswith(f"from {relay.address}:"), output


def _metrics(address, source=None):
    """The answer to GET /metrics on the MetricsPort through the public address, or "timeout"/"refused"."""
    try:
        with socket.create_connection((address, METRICS_PORT), timeout=TIMEOUT,
                                      source_address=(source, 0) if source else None) as conn:
            conn.settimeout(TIMEOUT)
            conn.sendall(f"GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
            answer = b""
            while len(answer) < 1 << 20:
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    if answer:
                        break  # tor keeps the connection open after the body
                    raise
                if not chunk:
                    break
                answer += chunk
            return answer.decode(errors="replace")
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"


@pytest.fixture
def other_source():
    """A second address on the machine side of the link, outside metrics_networks; removed afterwards."""
    device = paths.veth_name(INDEX)
    subprocess.run(["ip", "addr", "add", f"{OTHER_SOURCE}/24", "dev", device], check=True)
    try:
        yield OTHER_SOURCE
    finally:
        subprocess.run(["ip", "addr", "del", f"{OTHER_SOURCE}/24", "dev", device], check=False)


def test_metrics_port_answers_metrics_networks_only(relay, other_source):
    answer = _metrics(relay.address)
    assert answer.startswith("HTTP/1.0 200 OK"), answer[:500]
    assert any(line.startswith("tor_") for line in answer.splitlines()), answer[:2000]
    # from an address outside metrics_networks pf neither redirects nor passes it
    assert _metrics(relay.address, source=other_source) == "timeout"
    # while the relay itself answers that address
    assert _attempt(relay.address, 22, source=other_source).startswith("SSH-2.0-")
