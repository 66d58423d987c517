"""End to end on a lab host: two deploys at once against one server, and a lock left by an interrupted one.

The second deploy stops at once, changes nothing and says since when the first one runs; the first converges.
A deploy whose SSH session ends (here: its ssh client killed mid-run) leaves no lock behind: the next deploy
gets it within moments, because the holder lives only as long as that session's sshd process.
"""

import json
import os
import signal
import subprocess
import time
from shlex import quote

import pytest

from lab import paths
from relay import PASSPHRASE, PYINFRA, ROOT, changes, relay_host
from torjail.procedures.deploylock import DeployLock

pytestmark = pytest.mark.lab

NAME, INDEX = "h2a", 30
HELD = "another deploy is running on"
HOLDER = "cat /var/run/torjail-deploy.holder 2>/dev/null"
# A holder other than the one named before (an earlier deploy's session may still be closing) and alive.
NEW_HOLDER_ALIVE = ('read -r locker _ < /var/run/torjail-deploy.holder && [ "$locker" != "{before}" ] '
                    '&& kill -0 "$locker"')
# A pf.conf and a torrc change: the first deploy then checks and reloads both, pf under its guard with a fresh
# login, long enough for the test to see it holding the lock.
WIDER_ADMINS = {"admin_networks": ["198.18.0.0/15", "192.0.2.0/24"], "bandwidth_rate": "2 MBytes"}


@pytest.fixture(scope="module")
def relay():
    with relay_host(NAME, INDEX) as relay:
        result = relay.pyinfra("deploy.py")
        if result.returncode != 0 and "reboot, then deploy again" in result.stdout:
            relay.reboot()  # too little free memory to move swap now: encrypted swap comes with the boot
            result = relay.pyinfra("deploy.py")
        assert result.returncode == 0, result.stdout[-5000:]
        yield relay


def _deploy_in_background(relay, settings):
    env = {**os.environ, "TORJAIL_LAB_HOST": relay.name, "TORJAIL_GELI_PASSPHRASE": PASSPHRASE,
           "TORJAIL_LAB_SETTINGS": json.dumps(settings)}
    return subprocess.Popen([PYINFRA, "lab/inventory.py", "deploy.py", "-y"], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_second_deploy_stops_while_the_first_holds_the_lock(relay):
    before = (relay.run(HOLDER, timeout=30)[1].split() or [""])[0]
    first = _deploy_in_background(relay, WIDER_ADMINS)
    try:
        deadline = time.monotonic() + 60
        while relay.run(NEW_HOLDER_ALIVE.format(before=before), timeout=30)[0] != 0:
            assert time.monotonic() < deadline and first.poll() is None, "the first deploy never took the lock"
            time.sleep(0.3)
        # The first deploy waits (its pyinfra stopped, its SSH session open) while the second one runs: however
        # fast the first one is, the second asks while the lock is held.
        first.send_signal(signal.SIGSTOP)
        try:
            second = relay.pyinfra("deploy.py", settings=WIDER_ADMINS)
        finally:
            first.send_signal(signal.SIGCONT)
    finally:
        output, _ = first.communicate(timeout=900)
    assert first.returncode == 0 and changes(output) > 0, output[-5000:]
    assert second.returncode != 0 and HELD in second.stdout, second.stdout[-5000:]
    assert "(its SSH session is sshd process" in second.stdout
    assert "Starting operation" not in second.stdout  # stopped while planning: nothing ran


def test_a_lock_whose_ssh_session_ended_does_not_block_the_next_deploy(relay):
    """The lock is taken the way a deploy takes it, in an SSH session that then stays open (a deploy in
    progress); killing the ssh client ends the session as an interrupted deploy's does."""
    # a connection of its own (no ssh multiplexing): killing the client then ends the session, as pyinfra's
    ssh = ["ssh", "-F", paths.ssh_config_path(relay.name), "-o", "ControlMaster=no", "-o", "ControlPath=none",
           relay.name,
           f"sh -c {quote(DeployLock().command())}; sleep 120"]
    holder = subprocess.Popen(ssh, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "acquired"
        blocked = relay.pyinfra("deploy.py")
        assert blocked.returncode != 0 and HELD in blocked.stdout, blocked.stdout[-5000:]
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    time.sleep(2)
    result = relay.pyinfra("deploy.py", settings=WIDER_ADMINS)
    assert result.returncode == 0 and changes(result.stdout) == 0, result.stdout[-5000:]
