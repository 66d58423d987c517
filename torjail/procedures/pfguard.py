"""Loading a pf ruleset without locking the operator out.

Before the new ruleset loads, a guard starts on the server (daemon(8), detached from the SSH session): unless it
is cancelled within the grace period it puts back the state before the load: the previous ruleset (pf off when
that fails to load), or pf off again when it was off. The deploy then opens a FRESH SSH connection from the operator's machine -- an existing session survives a
reload because pf keeps its state -- and cancels the guard only when that login works. When pf was off, the old
session has no state in pf and stops once pf comes on: the deploy goes on over the fresh login. pf is always
reloaded (`pfctl -f`), never restarted: rc.d/pf's start flushes every state, SSH sessions included.
"""

from __future__ import annotations

import time
from shlex import quote

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, operation
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
from pyinfra.api.exceptions import PyinfraError

from torjail.connection import without_nagle
from torjail.freebsd.pf import PfStatus

from . import deploylock
from torjail.freebsd import readings

GUARD_PIDFILE = "/var/run/torjail-pf-guard.pid"
# Present while the guard waits. Whoever renames it first decides, atomically (rename(2)): the guard, whose grace
# period ended, rolls back; the deploy's cancel keeps the new ruleset. The loser of that race does nothing, and a
# cancel that loses fails: the deploy says the ruleset was rolled back instead of reporting success.
GUARD_WAITING_FILE = "/var/run/torjail-pf-guard.waiting"
ROLLING_BACK_SUFFIX = ".rolling-back"
CANCELLED_SUFFIX = ".cancelled"
PREVIOUS_SUFFIX = ".torjail-previous"
ENABLE_DELAY_SECONDS = 2
REJECTED_SUFFIX = ".torjail-rejected"
GUARD_WAITING = "torjail: rollback guard waiting"


def _waiting_test() -> str:
    """Shell test, true while a guard waits: its file is there and its process alive."""
    return (f"pid=$(cat {GUARD_PIDFILE} 2>/dev/null); "
            f'[ -e {GUARD_WAITING_FILE} ] && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null')


class PfGuard(FactBase):
    """
    Returns the pid of a rollback guard still waiting, or None.
    """

    def command(self) -> str:
        return f'if {_waiting_test()}; then echo "$pid"; fi'

    @staticmethod
    def default():
        return None

    def process(self, output: list[str]):
        return int(output[0]) if output and output[0].strip().isdigit() else None


def rollback_script(rules: str, seconds: int, pf_was_enabled: bool = True) -> str:
    """
    The guard's shell program: wait, then, unless cancelled, put back the state before the load. pf was enabled:
    the previous ruleset is loaded again, and if there is none or it fails to load, pf is disabled rather than
    left with the ruleset that cut SSH. pf was off: pf is turned off again (the old pf.conf, never loaded, is
    not loaded now) and the previous file put back in place.
    """
    previous, rejected = quote(rules + PREVIOUS_SUFFIX), quote(rules + REJECTED_SUFFIX)
    live, waiting = quote(rules), quote(GUARD_WAITING_FILE)
    rolling = quote(GUARD_WAITING_FILE + ROLLING_BACK_SUFFIX)
    log = "logger -t torjail"
    if pf_was_enabled:
        restore = (f"if [ -f {previous} ] && cp -p {previous} {live} && pfctl -f {live}; then "
                   f"{log} 'pf: new ruleset rolled back to the previous one (no fresh SSH login); see {rejected}'; "
                   f"else pfctl -d; {log} 'pf: new ruleset rolled back (no fresh SSH login) but the previous one "
                   f"did not load: pf disabled; see {rejected}'; fi; ")
    else:
        restore = (f"pfctl -d; if [ -f {previous} ]; then cp -p {previous} {live}; else rm -f {live}; fi; "
                   f"{log} 'pf: new ruleset rolled back (no fresh SSH login): pf disabled as before; see {rejected}'; ")
    return (
        f"sleep {int(seconds)}; "
        f"mv {waiting} {rolling} 2>/dev/null || exit 0; "
        f"cp -p {live} {rejected}; "
        + restore +
        f"rm -f {rolling} {GUARD_PIDFILE}"
    )


@operation(is_idempotent=False)
def guarded_load(rules: str = "/etc/pf.conf", seconds: int = 90):
    """
    Load a ruleset with a rollback guard running; pf is enabled if it was off.

    + rules: the ruleset file (already checked with ``pfctl -nf``); RULES.torjail-previous is the last good one,
      when there was one
    + seconds: grace period before the guard rolls back

    Precede with ``superseded`` when a guard may still be waiting (before the ruleset file is replaced); follow
    with ``fresh_ssh_login`` (through ``python.call``) and ``guard_cancelled``.

    **Example:**

    .. code:: python

        pfguard.guarded_load("/etc/pf.conf", seconds=90)
    """
    enabled = readings.fact(PfStatus).get("enabled")
    yield StringCommand(start_command(rules, seconds, pf_was_enabled=enabled))
    yield StringCommand("pfctl", "-f", quote(rules))
    if not enabled:
        # pf has no state for a connection older than pf itself, and its rules pass TCP on SYN only: this SSH
        # session stops the moment pf comes on. So pf comes on a moment after this command has returned, and
        # the deploy goes on over the fresh login that fresh_ssh_login opens.
        yield StringCommand("daemon", "-f", "sh", "-c", quote(f"sleep {ENABLE_DELAY_SECONDS}; pfctl -e"))


@operation(is_idempotent=False)
def superseded():
    """
    Stop a rollback guard that an earlier deploy left waiting, before this deploy places a new ruleset: its grace
    period could otherwise end between the upload and the load, put its previous ruleset over the new file and
    load it, and this deploy would then reload the old file and report success. A guard already rolling back
    is let finish first.

    **Example:**

    .. code:: python

        pfguard.superseded()
    """
    if readings.fact(PfGuard) is None:
        host.noop("no rollback guard is waiting")
        return
    yield StringCommand(_supersede_command())


def start_command(rules: str, seconds: int, pf_was_enabled: bool) -> str:
    """Mark the guard waiting, then start it detached (daemon(8)); the guard records its own pid."""
    script = f"echo $$ > {GUARD_PIDFILE}; " + rollback_script(rules, seconds, pf_was_enabled)
    return f"touch {GUARD_WAITING_FILE} && daemon -f sh -c {quote(script)}"


def _supersede_command() -> str:
    """Stop an earlier guard still waiting (its deploy stopped before the cancel) so that it never rolls back
    this deploy's ruleset; if it has just begun rolling back, let it finish first."""
    cancelled = quote(GUARD_WAITING_FILE + CANCELLED_SUFFIX)
    return (f"pid=$(cat {GUARD_PIDFILE} 2>/dev/null); "
            f"if mv {GUARD_WAITING_FILE} {cancelled} 2>/dev/null; then "
            f'[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -f {cancelled}; '
            f'else while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do sleep 1; done; fi')


def _connector_arguments(host):
    """How the current operation runs its commands (sudo and the like), with a time limit."""
    arguments = host.current_op_global_arguments or {}
    return {**{key: arguments[key] for key in CONNECTOR_ARGUMENT_KEYS if key in arguments}, "_timeout": 30}


def login_check_command() -> StringCommand:
    """pf's status, then a line GUARD_WAITING while the rollback guard still waits."""
    return StringCommand(f"pfctl -s info; if {_waiting_test()}; then echo {quote(GUARD_WAITING)}; fi")


def fresh_ssh_login(state, host, attempts=5, pause=3):
    """
    Open a new connection to the host, the way the deploy itself connects, and see pf enabled through it while the
    rollback guard still waits; the deploy then goes on over this connection (the old one may have no state in
    pf, see guarded_load). A login that only works once the guard has rolled back proves nothing about the new
    ruleset: it fails the check at once.
    """
    errors = []
    for attempt in range(attempts):
        if attempt:
            time.sleep(pause)
        connector = host.connector_cls(state, host)
        try:
            connector.connect()
            without_nagle(connector)
            status, output = connector.run_shell_command(login_check_command(), **_connector_arguments(host))
            lines = output.stdout_lines
            enabled = status and any(line.startswith("Status: Enabled") for line in lines)
            if enabled and GUARD_WAITING in lines:
                _adopt(host, connector)
                return
            if status and GUARD_WAITING not in lines:
                errors.append("logged in only after the rollback guard had stopped waiting (the previous "
                              "ruleset may be back)")
                _disconnect(connector)
                break
            errors.append("pf is not enabled" if status else "the login check command failed")
        except Exception as error:  # any failure to log in counts; the guard then rolls back
            errors.append(f"{type(error).__name__}: {error}")
        _disconnect(connector)
    raise PyinfraError(f"{host.name}: no fresh SSH login with pf enabled after loading the new pf ruleset "
                       f"({'; '.join(errors)}); the previous ruleset comes back by itself when the guard's grace "
                       "period ends")


def _adopt(host, connector):
    """Run the rest of the deploy over `connector`, closing the connection it replaces; the deploy lock, tied
    to the SSH session it was taken in, moves to the new one first."""
    connector.run_shell_command(StringCommand(deploylock.handover_command()), **_connector_arguments(host))
    previous, host.connector = host.connector, connector
    _disconnect(previous)


def _disconnect(connector):
    disconnect = getattr(connector, "disconnect", None)
    if disconnect:
        try:
            disconnect()
        except Exception:  # a connection that pf already cut may fail to close cleanly; it is dropped anyway
            pass


@operation(is_idempotent=False)
def guard_cancelled(rules: str = "/etc/pf.conf"):
    """
    Cancel the rollback guard (the new ruleset is good) and forget the previous ruleset. A guard that is no
    longer waiting (its grace period ran out, so it may have rolled back) fails the operation.

    + rules: the ruleset file

    **Example:**

    .. code:: python

        pfguard.guard_cancelled("/etc/pf.conf")
    """
    yield StringCommand(cancel_command(rules))


def cancel_command(rules: str) -> str:
    """Claim the guard's waiting file (the guard then never rolls back) and end the guard; fails, saying so,
    when the guard has claimed it first."""
    gone = quote("torjail: the pf rollback guard was no longer waiting: it rolls the new ruleset back (or has "
                 "rolled it back); check `pfctl -s info` and `pfctl -s rules` and deploy again")
    cancelled = quote(GUARD_WAITING_FILE + CANCELLED_SUFFIX)
    return (f"if ! mv {GUARD_WAITING_FILE} {cancelled} 2>/dev/null; then echo {gone} >&2; exit 1; fi; "
            f'pid=$(cat {GUARD_PIDFILE} 2>/dev/null); [ -n "$pid" ] && kill "$pid" 2>/dev/null; '
            f"rm -f {cancelled} {GUARD_PIDFILE} {quote(rules + PREVIOUS_SUFFIX)}")
