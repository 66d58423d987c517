"""The accounting lines torjail writes make the real tor hibernate when the allowance is used, and wake in the next
period: the budget's promise shown on tor itself, not on our arithmetic.

tor runs in a network namespace of its own (nothing but its loopback, so no byte leaves this machine) with the
accounting lines rendered from settings by torjail's own template, a 1 KBytes allowance and a daily period that
ends a minute or two from now. Its ORPort listens on a documentation address (198.51.100.7) placed on that
loopback: tor counts no bytes of connections from private addresses (127.0.0.1 included), and nothing here sets
CountPrivateBandwidth, a debugging option no relay runs with. TLS handshakes with the ORPort, from inside the
namespace, use up the allowance; stem, on tor's control socket, watches the state go from awake to hibernating
and, once the period ends, back to awake with a new period.
"""

import os
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import stem.control

from torjail.render import render_file
from torjail.settings import build_settings
from torjail.torcontrol import ACCOUNTING, parse_accounting

pytestmark = pytest.mark.lab

ADDRESS = "198.51.100.7"
OR_PORT = 9001
ALLOWANCE = "1 KBytes"
START_SECONDS = 30  # the longest tor takes to open its control socket
HIBERNATE_SECONDS = 40  # to use up the allowance and be seen hibernating
PERIOD_MARGIN = 20  # the period ends at least this long after tor was seen hibernating
WAKE_SECONDS = 90  # after the period's end: tor's housekeeping looks once a second
HANDSHAKES = 40  # at most; each writes tor's certificates, well over the allowance


def _tor():
    return shutil.which("tor", path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin")


def _ip():
    return shutil.which("ip", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


@pytest.fixture
def namespace():
    """A network namespace with only its loopback up and ADDRESS on it; removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("a network namespace needs root")
    if _tor() is None or _ip() is None:
        pytest.skip("needs tor and ip (make deps installs them)")
    name = f"torjail-hib-{os.getpid()}"
    subprocess.run([_ip(), "netns", "add", name], check=True)
    try:
        for command in (["link", "set", "lo", "up"], ["addr", "add", f"{ADDRESS}/32", "dev", "lo"]):
            subprocess.run([_ip(), "-n", name, *command], check=True)
        yield name
    finally:
        subprocess.run([_ip(), "netns", "delete", name], check=False)


def _period_end_after(seconds):
    """The local wall-clock minute at least `seconds` from now, as (epoch, 'HH:MM'): tor reads AccountingStart
    in local time."""
    end = (int(time.time()) + seconds + 59) // 60 * 60
    return end, time.strftime("%H:%M", time.localtime(end))


def _accounting_lines(start):
    """The traffic lines of the torrc torjail renders for a relay with this allowance and period."""
    settings = build_settings("hibernate", {
        "identity": "on-relay", "relay_nickname": "Hibernate", "relay_contact": "ops@example.org",
        "public_ipv4": ADDRESS, "accounting_max": ALLOWANCE, "accounting_start": f"day {start}",
        "accounting_rule": "sum"})
    torrc = render_file(settings, "torrc.j2")
    lines = [line for line in torrc.splitlines() if line.startswith(("Accounting", "RelayBandwidth"))]
    assert [line.split()[0] for line in lines] == ["AccountingMax", "AccountingStart", "AccountingRule"]
    return lines


def _write_torrc(directory, accounting):
    data = directory / "data"
    data.mkdir(mode=0o700)
    torrc = directory / "torrc"
    torrc.write_text("\n".join([
        f"DataDirectory {data}", f"ControlSocket {data}/control", "CookieAuthentication 1",
        f"ORPort {ADDRESS}:{OR_PORT}", "SocksPort 0", "Nickname Hibernate", "ContactInfo ops@example.org",
        "ExitRelay 0", "ExitPolicy reject *:*",
        # A relay in a namespace without a network cannot test its own reachability or publish: the accounting
        # is all this test looks at.
        "AssumeReachable 1", "PublishServerDescriptor 0", f"Log notice file {directory}/notices.log",
        *accounting, ""]))
    return torrc, data / "control"


def _accounting(controller):
    return parse_accounting({name: controller.get_info(name, None) for name in ACCOUNTING})


def _wait_for(what, seconds, probe):
    """probe() until it returns something true, for at most `seconds`; fail naming `what`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1)
    pytest.fail(f"tor: {what} not seen within {seconds} s")


HANDSHAKE = """
import socket, ssl, sys
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
done = 0
for _ in range(int(sys.argv[3])):
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as raw:
            with context.wrap_socket(raw) as tls:
                tls.sendall(bytes([0, 0, 7, 0, 2, 0, 4]))  # a VERSIONS cell offering link protocol 4
                tls.recv(4096)
                done += 1
    except OSError:
        break  # a hibernating tor closes its ORPort
print(done)
"""


def _handshakes(namespace, count):
    """TLS handshakes with the ORPort from inside the namespace; how many completed."""
    result = subprocess.run([_ip(), "netns", "exec", namespace, sys.executable, "-c", HANDSHAKE, ADDRESS,
                             str(OR_PORT), str(count)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_tor_hibernates_on_the_planned_allowance_and_wakes_in_the_next_period(namespace, tmp_path):
    period_end, start = _period_end_after(START_SECONDS + HIBERNATE_SECONDS + PERIOD_MARGIN)
    torrc, control = _write_torrc(tmp_path, _accounting_lines(start))
    tor = subprocess.Popen([_ip(), "netns", "exec", namespace, _tor(), "-f", str(torrc)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for("its control socket", START_SECONDS, control.exists)
        with stem.control.Controller.from_socket_file(str(control)) as controller:
            controller.authenticate()
            first = _accounting(controller)
            assert first["enabled"] is True and first["hibernating"] == "awake", first
            assert first["interval_end"] == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(period_end)), first

            assert _handshakes(namespace, HANDSHAKES) >= 1
            tired = _wait_for("hibernation", HIBERNATE_SECONDS,
                              lambda: (found := _accounting(controller))["hibernating"] in ("soft", "hard") and found)
            used = tired["bytes"]["read"] + tired["bytes"]["written"]
            assert used >= 0.95 * 1024, tired  # AccountingRule sum: both ways against the allowance
            assert time.time() < period_end, "the period ended before tor was seen hibernating"

            awake = _wait_for("waking in the next period", period_end - time.time() + WAKE_SECONDS,
                              lambda: (found := _accounting(controller))["hibernating"] == "awake" and found)
            assert time.time() >= period_end - 1, awake
            assert awake["interval_start"] == first["interval_end"], (first, awake)
            assert awake["bytes"]["read"] + awake["bytes"]["written"] < used, awake
            assert _handshakes(namespace, 1) == 1  # the ORPort accepts again
    finally:
        tor.terminate()
        try:
            tor.wait(timeout=30)
        except subprocess.TimeoutExpired:
            tor.kill()
            tor.wait()
    log = Path(tmp_path, "notices.log").read_text()
    assert "Hibernation period ended" in log or "Resuming normal activity" in log, log[-2000:]
