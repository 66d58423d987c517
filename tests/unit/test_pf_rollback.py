"""The pf rollback guard's shell programs, run by a real POSIX sh (dash, as FreeBSD's sh reads them) against a
fake pfctl and logger on PATH: what the guard puts back, and who wins when a cancel races the rollback.

The fake pfctl records its arguments and fails a load (`-f`) of a file whose content is "unloadable".
"""

import subprocess
import time

import pytest

from torjail.procedures import pfguard

NEW, OLD = "the new ruleset\n", "the previous ruleset\n"
FAKE_PFCTL = """#!/bin/sh
echo "$*" >> "$PFCTL_LOG"
if [ "$1" = -f ] && grep -q unloadable "$2"; then echo "$2:1: syntax error" >&2; exit 1; fi
exit 0
"""


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A scratch /etc and /var/run, the guard's files in it, and a shell runner with the fakes first on PATH."""
    fakes = tmp_path / "bin"
    fakes.mkdir()
    (fakes / "pfctl").write_text(FAKE_PFCTL)
    (fakes / "logger").write_text('#!/bin/sh\necho "$*" >> "$LOGGER_LOG"\n')
    for fake in fakes.iterdir():
        fake.chmod(0o755)
    monkeypatch.setattr(pfguard, "GUARD_PIDFILE", str(tmp_path / "guard.pid"))
    monkeypatch.setattr(pfguard, "GUARD_WAITING_FILE", str(tmp_path / "guard.waiting"))
    rules = tmp_path / "pf.conf"
    rules.write_text(NEW)
    env = {"PATH": f"{fakes}:/usr/bin:/bin", "PFCTL_LOG": str(tmp_path / "pfctl.log"),
           "LOGGER_LOG": str(tmp_path / "logger.log")}

    class Server:
        path = tmp_path
        live = rules
        previous = tmp_path / ("pf.conf" + pfguard.PREVIOUS_SUFFIX)
        rejected = tmp_path / ("pf.conf" + pfguard.REJECTED_SUFFIX)
        waiting = tmp_path / "guard.waiting"

        def sh(self, script, background=False):
            command = ["/bin/sh", "-c", script]
            if background:
                return subprocess.Popen(command, env=env)
            return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)

        def pfctl_calls(self):
            log = tmp_path / "pfctl.log"
            return log.read_text().splitlines() if log.exists() else []

        def rollback(self, pf_was_enabled, seconds=0):
            self.waiting.touch()
            return self.sh(pfguard.rollback_script(str(rules), seconds, pf_was_enabled))

    return Server()


def test_pf_enabled_before_gets_the_previous_ruleset_back(server):
    server.previous.write_text(OLD)
    assert server.rollback(pf_was_enabled=True).returncode == 0
    assert server.pfctl_calls() == [f"-f {server.live}"]
    assert (server.live.read_text(), server.rejected.read_text()) == (OLD, NEW)
    assert not server.waiting.exists()


def test_a_previous_ruleset_that_fails_to_load_disables_pf(server):
    """Keeping the ruleset that cut SSH would lock the operator out for good; pf off lets SSH in."""
    server.previous.write_text("unloadable\n")
    server.rollback(pf_was_enabled=True)
    assert server.pfctl_calls() == [f"-f {server.live}", "-d"]


def test_pf_enabled_before_without_a_previous_ruleset_disables_pf(server):
    server.rollback(pf_was_enabled=True)
    assert server.pfctl_calls() == ["-d"]
    assert server.rejected.read_text() == NEW


@pytest.mark.parametrize("previous", [OLD, None], ids=["old pf.conf", "no pf.conf"])
def test_pf_off_before_stays_off_and_the_old_file_is_never_loaded(server, previous):
    """An old /etc/pf.conf of a host whose pf was off was never loaded: loading it now would enable rules
    nobody checked."""
    if previous:
        server.previous.write_text(previous)
    server.rollback(pf_was_enabled=False)
    assert server.pfctl_calls() == ["-d"]
    assert (server.live.read_text() if server.live.exists() else None) == previous
    assert server.rejected.read_text() == NEW


def test_a_cancel_before_the_grace_period_ends_stops_the_guard(server):
    server.previous.write_text(OLD)
    server.waiting.touch()
    guard = server.sh(f"echo $$ > {pfguard.GUARD_PIDFILE}; "
                      + pfguard.rollback_script(str(server.live), 5, True), background=True)
    deadline = time.monotonic() + 5
    while not (server.path / "guard.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    cancel = server.sh(pfguard.cancel_command(str(server.live)))
    assert cancel.returncode == 0, cancel.stderr
    assert guard.wait(timeout=10) != 0  # ended by the cancel's kill, before it could roll back
    assert server.pfctl_calls() == [] and server.live.read_text() == NEW
    assert not server.previous.exists() and not server.waiting.exists()


def test_a_cancel_that_loses_the_race_to_the_rollback_fails_and_says_so(server):
    """The guard began rolling back: a cancel that still reported success would leave the deploy saying the new
    ruleset is in place while the previous one is."""
    server.previous.write_text(OLD)
    server.rollback(pf_was_enabled=True)
    cancel = server.sh(pfguard.cancel_command(str(server.live)))
    assert cancel.returncode == 1
    assert "no longer waiting" in cancel.stderr
    assert server.live.read_text() == OLD


def test_a_guard_whose_waiting_file_was_claimed_does_nothing(server):
    """Whoever renames the waiting file first decides: a cancel that claimed it wins even against a guard that
    has just woken up."""
    server.previous.write_text(OLD)
    script = pfguard.rollback_script(str(server.live), 0, True)
    assert server.sh(script).returncode == 0  # no waiting file: already claimed
    assert server.pfctl_calls() == [] and server.live.read_text() == NEW
