"""An operation's consecutive shell commands go to the server as one, each only when the one before succeeded."""

import subprocess
from io import StringIO

from pyinfra.api import FileUploadCommand, StringCommand

from torjail.freebsd.shell import joined


def _texts(commands):
    return [command.get_raw_value() if isinstance(command, StringCommand) else command for command in commands]


def test_consecutive_commands_become_one_and_uploads_stay_in_their_place():
    upload = FileUploadCommand(StringIO("x"), "/etc/x")
    commands = list(joined([StringCommand("a"), upload, StringCommand("b", "1"), StringCommand("c || d")]))
    assert _texts(commands) == ["a", upload, "{ b 1 ; } && { c || d ; }"]


def test_a_command_with_its_own_standard_input_stays_on_its_own():
    secret = StringCommand("geli", "attach", "-j", "-", "md10", _stdin="passphrase")
    commands = list(joined([StringCommand("mdconfig"), secret, StringCommand("mount")]))
    assert len(commands) == 3 and commands[1] is secret
    assert [_texts([commands[0]]), _texts([commands[2]])] == [["mdconfig"], ["mount"]]


def test_nothing_yields_nothing():
    assert list(joined([])) == []


def test_on_the_server_a_failing_command_stops_the_rest(tmp_path):
    """As pyinfra stops an operation at its first failing command: nothing after it runs, and the status says so;
    a command that fails inside (`check || { cleanup; exit 1; }`) ends the whole command."""
    first = StringCommand("touch", str(tmp_path / "first"))
    cases = {
        "false": StringCommand("false"),
        "exit": StringCommand("true", "&&", "{", "false", "||", "{", "exit", "3", ";", "}", ";", "}"),
    }
    for name, failing in cases.items():
        after = StringCommand("touch", str(tmp_path / f"after-{name}"))
        (command,) = joined([first, failing, after])
        result = subprocess.run(["sh", "-c", command.get_raw_value()], capture_output=True, timeout=10)
        assert result.returncode != 0, name
        assert (tmp_path / "first").exists() and not (tmp_path / f"after-{name}").exists(), name
