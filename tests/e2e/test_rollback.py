"""End to end on a lab host: a pf.conf that would cut SSH is rolled back by itself, and the next deploy still works.

The bad ruleset lets SSH in only from 192.0.2.0/24 (TEST-NET-1), which this machine is not in: the fresh SSH login
that must cancel the rollback guard cannot happen, the deploy fails, and when the guard's grace period ends the
previous ruleset and /etc/pf.conf come back, with SSH. The lab's pf really filters (nftables), so the cut is real.

sshd's rate limit (<bruteforce>, 15 new connections per 60 s from one address) also applies to this machine: the
checks share a few SSH connections.
"""

import time

import pytest

from relay import changes, relay_host

pytestmark = pytest.mark.lab

NAME, INDEX = "rollback", 3
GRACE_SECONDS = 15
CUT_SSH = {"admin_networks": ["192.0.2.0/24"], "pf_rollback_seconds": GRACE_SECONDS}
# One SSH connection: the ruleset (pf.conf's digest, pf's status and loaded rules), then the guard's traces.
STATE = ("sha256 -q /etc/pf.conf; pfctl -s info | head -1 | cut -c1-15; pfctl -s rules; pfctl -t admins -T show; "
         "echo --; "
         "test -e /var/run/torjail-pf-guard.pid && echo guard waiting; "
         "grep -q 192.0.2.0/24 /etc/pf.conf.torjail-rejected 2>/dev/null && echo rejected ruleset kept; true")


@pytest.fixture(scope="module")
def relay():
    with relay_host(NAME, INDEX) as relay:
        result = relay.pyinfra("deploy.py")
        assert result.returncode == 0, result.stdout[-5000:]
        yield relay


def _state(relay):
    """(ruleset, guard's traces) of the lab host."""
    status, output, err = relay.run(STATE, timeout=30)
    assert status == 0, err
    ruleset, _, traces = output.partition("--\n")
    return ruleset, traces.splitlines()


def _ssh_back(relay, deadline):
    """Whether an SSH login works before `deadline` (time.monotonic()); a few attempts at most."""
    for _ in range(6):
        status, _out, _err = relay.run("true", timeout=15)
        if status == 0:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(3)
    return False


def test_a_ruleset_that_cuts_ssh_is_rolled_back_and_the_next_deploy_converges(relay):
    ruleset, traces = _state(relay)
    assert ruleset.splitlines()[1] == "Status: Enabled" and ruleset.rstrip().endswith("198.18.0.0/15")
    assert traces == []

    started = time.monotonic()
    result = relay.pyinfra("deploy.py", settings=CUT_SSH)
    failed_after = time.monotonic() - started
    assert result.returncode != 0, result.stdout[-5000:]
    assert "no fresh SSH login with pf enabled" in result.stdout, result.stdout[-5000:]
    assert "Could not connect" in result.stdout, "the new ruleset did not cut SSH"
    # the deploy stops about when the guard rolls back, not long after
    assert failed_after < GRACE_SECONDS + 60, failed_after

    # SSH back within moments of the grace period's end, through the previous ruleset and pf.conf
    assert _ssh_back(relay, started + GRACE_SECONDS + 30), "SSH did not come back after the grace period"
    after, traces = _state(relay)
    assert after == ruleset
    assert traces == ["rejected ruleset kept"], traces

    result = relay.pyinfra("deploy.py")
    assert result.returncode == 0, result.stdout[-5000:]
    again = relay.pyinfra("deploy.py")
    assert again.returncode == 0 and changes(again.stdout) == 0, again.stdout[-5000:]
    assert _state(relay)[0] == ruleset


def test_pf_off_before_stays_off_after_the_rollback_and_the_old_pf_conf_is_not_loaded(relay):
    """pf off and an /etc/pf.conf that was never loaded (here one that blocks everything, SSH included): the
    rollback of a ruleset that cuts SSH turns pf off again and puts that file back, without loading it."""
    old = "block all\n"
    status, _out, err = relay.run(f"pfctl -d && printf '{old}' > /etc/pf.conf", timeout=30)
    assert status == 0, err
    started = time.monotonic()
    result = relay.pyinfra("deploy.py", settings=CUT_SSH)
    assert result.returncode != 0 and "no fresh SSH login with pf enabled" in result.stdout, result.stdout[-5000:]
    time.sleep(max(0.0, started + GRACE_SECONDS + 3 - time.monotonic()))
    assert _ssh_back(relay, started + GRACE_SECONDS + 30), "SSH did not come back after the grace period"
    status, output, err = relay.run("pfctl -s info | head -1 | cut -c1-15; cat /etc/pf.conf; "
                                    "test -e /var/run/torjail-pf-guard.waiting && echo guard waiting; true",
                                    timeout=30)
    assert status == 0, err
    assert output == "Status: Disable\n" + old, output

    result = relay.pyinfra("deploy.py")
    assert result.returncode == 0, result.stdout[-5000:]
    assert _state(relay)[0].splitlines()[1] == "Status: Enabled"
