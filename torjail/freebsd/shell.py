"""Several shell commands of one operation sent to the server as one remote command.

Every remote command costs a round trip, and operators deploy over links of 50 to 150 ms. pyinfra runs an
operation's commands one after the other and stops at the first that fails, which is what `{ a; } && { b; }`
does on the server in one command: `joined` sends them so. A command that carries its own connector arguments
(a secret on standard input) and a file upload stay commands of their own, in their place.

An operation joined this way must read whatever it reads before its first command (as torjail's operations do:
see torjail.freebsd.readings), since the commands of a run now go to the server only when the next upload or the
end of the operation is reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pyinfra.api import StringCommand


def _plain(command) -> bool:
    """A shell command with nothing of its own but its text."""
    return type(command) is StringCommand and not command.connector_arguments


def _and(commands: list[StringCommand]) -> StringCommand:
    if len(commands) == 1:
        return commands[0]
    bits: list = []
    for command in commands:
        bits += [*(["&&"] if bits else []), "{", command, ";", "}"]
    return StringCommand(*bits)


def joined(commands: Iterable) -> Iterator:
    """An operation's commands with each run of consecutive plain shell commands as one (`{ a; } && { b; }`)."""
    pending: list[StringCommand] = []
    for command in commands:
        if _plain(command):
            pending.append(command)
            continue
        if pending:
            yield _and(pending)
            pending = []
        yield command
    if pending:
        yield _and(pending)
