"""End to end on a lab host: who sshd's rate limit can lock out, with the lab's pf really filtering.

admin_networks narrower than the world (the lab's 198.18.0.0/15): this machine, put in <bruteforce> by hand,
still logs in afresh. admin_networks the world: a burst of new connections puts this machine in <bruteforce>,
fresh logins are dropped, but the SSH session already open stays usable (no `flush global`), and deleting the
address from the table, as the README tells, lets it in again.
"""

import socket
import subprocess

import pytest

from lab import paths
from relay import relay_host

pytestmark = pytest.mark.lab

NAME, INDEX = "h2b", 31
WORLD = {"admin_networks": ["0.0.0.0/0"], "sshd_connection_rate": "5/60"}
BURST = 12


@pytest.fixture(scope="module")
def relay():
    with relay_host(NAME, INDEX) as relay:
        result = relay.pyinfra("deploy.py")
        if result.returncode != 0 and "reboot, then deploy again" in result.stdout:
            relay.reboot()  # too little free memory to move swap now: encrypted swap comes with the boot
            result = relay.pyinfra("deploy.py")
        assert result.returncode == 0, result.stdout[-5000:]
        yield relay


def _fresh_login(relay):
    """Exit status of `true` over a new SSH connection (no multiplexing over the open one)."""
    argv = ["ssh", "-F", paths.ssh_config_path(relay.name), "-o", "ControlMaster=no", "-o", "ControlPath=none",
            "-o", "ConnectTimeout=5", relay.name, "true"]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30).returncode


def _operator_address(relay):
    status, output, err = relay.run("echo $SSH_CLIENT", timeout=30)
    assert status == 0, err
    return output.split()[0]


def test_narrow_admin_networks_log_in_even_from_bruteforce(relay):
    address = _operator_address(relay)
    status, _out, err = relay.run(f"pfctl -t bruteforce -T add {address}", timeout=30)
    assert status == 0, err
    try:
        assert _fresh_login(relay) == 0, f"{address} in <bruteforce> is cut off sshd although it is an admin"
    finally:
        relay.run(f"pfctl -t bruteforce -T delete {address}", timeout=30)


def test_world_wide_sshd_blocks_a_burst_but_keeps_the_open_session(relay):
    result = relay.pyinfra("deploy.py", settings=WORLD)
    assert result.returncode == 0, result.stdout[-5000:]
    address = _operator_address(relay)  # opens the session (ssh multiplexing) that must survive
    for _ in range(BURST):
        try:
            socket.create_connection((relay.address, 22), timeout=2).close()
        except OSError:
            pass
    status, shown, err = relay.run("pfctl -t bruteforce -T show", timeout=30)
    assert status == 0, f"the open session was cut by the overload: {err}"
    assert address in shown.split(), shown
    assert _fresh_login(relay) != 0, "a fresh login from an address in <bruteforce> got through"
    status, _out, err = relay.run(f"pfctl -t bruteforce -T delete {address}", timeout=30)
    assert status == 0, err
    assert _fresh_login(relay) == 0
    result = relay.pyinfra("deploy.py")
    assert result.returncode == 0, result.stdout[-5000:]
