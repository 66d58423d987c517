"""End to end on a lab host: a deploy killed at every step in turn loses nothing, and the next deploy converges.

The real pyinfra CLI runs against the lab host and is killed (SIGKILL to its process group: it stops dead, as when
the operator's machine dies; a command already sent runs on to its end on the server, as sshd lets it) when the
k-th "--> Starting operation" line appears, or a moment after it, so the kill lands before, during or just after
that operation's commands. Then:
- the re-run succeeds, and the run after it changes nothing (the deploy converges);
- no pf rollback guard is left waiting (it would roll the converged ruleset back later);
- an image that held a filesystem before the re-run keeps its GELI metadata (the last sector, where the salt and
  the encrypted keys live: a new `geli init` would change it), so it is never re-initialised;
- on the converged host, tor runs with the torrc on disk (asked over its control socket, tor reports the relay
  bandwidth that torrc sets), and a canary file written into the jail before the sweep reads back unchanged.

Two sweeps: on a fresh host, every step from the first vault operation to the end (the steps before it are single
idempotent commands), a fresh host each time (the even steps on one lab host, the odd ones on another); on the
converged host, every step of a deploy that carries a settings change (torrc and pf.conf change, tor reloads, pf
reloads under the guard), the change flipping back and forth (its first half of the steps on one lab host, the second on another). sshd's
rate limit is raised for these runs: the sweep opens several SSH connections per step. Run time: about 30 minutes of
lab work on a machine with two CPUs, in four parts that can run side by side.
"""

import json
import os
import secrets
import signal
import subprocess
import threading
import time

import pytest

from lab import host
from relay import PASSPHRASE, PYINFRA, ROOT, changes, relay_host

pytestmark = pytest.mark.lab

# A lab host of its own for each part of a sweep: the fresh host's steps are split in two (even and odd steps), the
# converged host's too (the first and the second half), so that the suite can run the four side by side
# (tests/run_groups.py).
HOSTS = {"even": ("sweep", 5), "odd": ("sweepodd", 14), "first half": ("sweepconv", 15),
         "second half": ("sweepconv2", 19)}
IMAGE = "/var/jails/tor.img"
CANARY = "/var/jails/tor/root/canary"
STARTING = "--> Starting operation: "
FIRST_VAULT_OPERATION = "Discard a half-made image"
# Seconds between the k-th "Starting operation" line and the kill, by k: the kill lands before, during or after
# that operation's commands.
KILL_DELAYS = (0.0, 0.05, 0.3)
RUN_SECONDS = 300
# Every run raises sshd's rate limit (it applies when admin_networks is the world); the converged sweep flips
# between the two settings, the second changing both torrc and pf.conf (one more admin network).
BASE = {"sshd_connection_rate": "1000/60"}
VARIANTS = (BASE, {**BASE, "bandwidth_rate": "3 MBytes", "admin_networks": ["198.18.0.0/15", "192.0.2.0/24"]})
RELAY_BANDWIDTH = "3145728"               # tor's RelayBandwidthRate with the second variant's torrc
CONTROL = "/var/jails/tor/var/db/tor"      # tor's control socket and its authentication cookie
# One SSH connection: the image's metadata (when the image holds a filesystem: no marker of a half-made image),
# whether a rollback guard waits, the running jails, and the RelayBandwidthRate tor runs with (its control socket).
STATE = (f"if [ -e {IMAGE} ] && [ ! -e {IMAGE}.torjail-incomplete ]; then tail -c 512 {IMAGE} | sha256; "
         "else echo no-image; fi; "
         'pid=$(cat /var/run/torjail-pf-guard.pid 2>/dev/null); '
         'if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo guard-waiting; else echo no-guard; fi; '
         "jls name | tr '\\n' ' '; echo; "
         f"cookie=$(od -An -v -tx1 {CONTROL}/control_auth_cookie 2>/dev/null | tr -d ' \\n'); "
         "printf 'AUTHENTICATE %s\\r\\nGETCONF RelayBandwidthRate\\r\\nQUIT\\r\\n' \"$cookie\" | "
         f"nc -U -w 5 {CONTROL}/control 2>/dev/null | tr -d '\\r' | sed -n 's/^250 RelayBandwidthRate=//p'; true")


def killed_deploy(relay, settings, step, delay):
    """Run the deploy and kill it when operation `step` starts (after `delay` seconds); returns the name of that
    operation, or None when the deploy ended before it."""
    env = {**os.environ, "TORJAIL_LAB_HOST": relay.name, "TORJAIL_GELI_PASSPHRASE": PASSPHRASE,
           "TORJAIL_LAB_SETTINGS": json.dumps(settings), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([PYINFRA, "lab/inventory.py", "deploy.py", "-y"], cwd=ROOT, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)

    def kill():
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    watchdog = threading.Timer(RUN_SECONDS, kill)
    watchdog.start()
    killed_at, seen = None, 0
    try:
        for line in process.stdout:
            if line.startswith(STARTING):
                seen += 1
                if seen == step:
                    killed_at = line[len(STARTING):].strip()
                    time.sleep(delay)
                    kill()
                    break
        process.stdout.close()
        process.wait(timeout=30)
    finally:
        watchdog.cancel()
        kill()
    return killed_at


def operations(output):
    """Names of the operations a pyinfra run started, in order."""
    return [line[len(STARTING):].strip() for line in output.splitlines() if line.startswith(STARTING)]


def state(relay):
    """(image metadata digest or "no-image", "guard-waiting" or "no-guard", running jails, tor's
    RelayBandwidthRate or "")."""
    status, output, err = relay.run(STATE, timeout=60)
    assert status == 0, err
    metadata, guard, jails, bandwidth = (output.splitlines() + ["", "", "", ""])[:4]
    return metadata, guard, jails.split(), bandwidth


def converge(relay, settings):
    """Re-run, then run again: problems found (empty when the first run succeeds and the second changes nothing)."""
    problems = []
    first = relay.pyinfra("deploy.py", settings=settings)
    if first.returncode != 0:
        return [f"re-run failed:\n{first.stdout[-3000:]}"]
    second = relay.pyinfra("deploy.py", settings=settings)
    if second.returncode != 0 or changes(second.stdout) != 0:
        changed = [line for line in second.stdout.splitlines() if "Success" in line and "[" in line]
        problems.append(f"second re-run did not converge (rc {second.returncode}, {len(changed)} changed):\n"
                        f"{second.stdout[-3000:]}")
    return problems


@pytest.fixture
def relay(request):
    name, index = request.param
    with relay_host(name, index) as relay:
        yield relay


def fresh(relay):
    host.destroy(relay.name, log=lambda text: None)
    host.up(relay.name, relay.index, log=lambda text: None)


@pytest.mark.parametrize("relay, parity", [(HOSTS["even"], 0), (HOSTS["odd"], 1)], indirect=["relay"],
                         ids=["even steps", "odd steps"])
def test_a_deploy_killed_at_every_step_on_a_fresh_host_converges_on_the_next_run(relay, parity):
    first = relay.pyinfra("deploy.py", settings=BASE)
    assert first.returncode == 0, first.stdout[-5000:]
    steps = operations(first.stdout)
    assert FIRST_VAULT_OPERATION in steps, steps
    failures = []
    for step in range(steps.index(FIRST_VAULT_OPERATION) + 1, len(steps) + 1):
        if step % 2 != parity:
            continue
        fresh(relay)
        killed_at = killed_deploy(relay, BASE, step, KILL_DELAYS[step % len(KILL_DELAYS)])
        where = f"step {step} ({killed_at})"
        if killed_at != steps[step - 1]:
            failures.append(f"{where}: expected to kill at {steps[step - 1]}")
            continue
        metadata = state(relay)[0]
        problems = converge(relay, BASE)
        after, guard, jails, _bandwidth = state(relay)
        if metadata != "no-image" and after != metadata:
            problems.append(f"image re-initialised: metadata {metadata} became {after}")
        if guard != "no-guard":
            problems.append("a pf rollback guard is still waiting after the deploy converged")
        if jails != ["tor"]:
            problems.append(f"jails running: {jails}")
        failures += [f"{where}: {problem}" for problem in problems]
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("relay, half", [(HOSTS["first half"], 0), (HOSTS["second half"], 1)], indirect=["relay"],
                         ids=["converged, first half", "converged, second half"])
def test_a_deploy_killed_at_every_step_on_a_converged_host_loses_nothing(relay, half):
    fresh(relay)
    result = relay.pyinfra("deploy.py", settings=BASE)
    assert result.returncode == 0, result.stdout[-5000:]
    canary = secrets.token_hex(32)
    status, _out, err = relay.run(f"printf %s {canary} > {CANARY} && sync")
    assert status == 0, err
    metadata, _guard, _jails, base_bandwidth = state(relay)
    assert metadata != "no-image"

    changed = relay.pyinfra("deploy.py", settings=VARIANTS[1])
    assert changed.returncode == 0, changed.stdout[-5000:]
    bandwidths = (base_bandwidth, state(relay)[3])
    assert bandwidths[1] == RELAY_BANDWIDTH and bandwidths[0] not in ("", RELAY_BANDWIDTH), bandwidths
    steps = operations(changed.stdout)
    assert "Load pf.conf under a rollback guard" in steps and "Reload tor (torrc changed)" in steps, steps
    middle = len(steps) // 2
    sweep = range(1, middle + 1) if half == 0 else range(middle + 1, len(steps) + 1)
    if (sweep[0] - 1) % 2 == 1:                 # the first killed run must carry a change: converge on BASE first
        converged = relay.pyinfra("deploy.py", settings=BASE)
        assert converged.returncode == 0, converged.stdout[-5000:]
    failures = []
    for step in sweep:
        variant = (step - 1) % 2                # odd steps flip back to BASE: every killed run carries a change
        settings = VARIANTS[variant]
        killed_at = killed_deploy(relay, settings, step, KILL_DELAYS[step % len(KILL_DELAYS)])
        where = f"step {step} ({killed_at})"
        problems = [] if killed_at == steps[step - 1] else [f"expected to kill at {steps[step - 1]}"]
        problems += converge(relay, settings)
        after, guard, jails, bandwidth = state(relay)
        if after != metadata:
            problems.append(f"image re-initialised: metadata {metadata} became {after}")
        if guard != "no-guard":
            problems.append("a pf rollback guard is still waiting after the deploy converged")
        if jails != ["tor"]:
            problems.append(f"jails running: {jails}")
        elif bandwidth != bandwidths[variant]:
            problems.append(f"tor does not run with its torrc: RelayBandwidthRate {bandwidth!r} in tor, "
                            f"{bandwidths[variant]!r} in torrc")
        failures += [f"{where}: {problem}" for problem in problems]
        if problems:                           # start the next step from a converged host again
            relay.pyinfra("deploy.py", settings=settings)
    status, output, err = relay.run(f"cat {CANARY}")
    assert (status, output) == (0, canary), err
    assert not failures, "\n\n".join(failures)
