"""The GELI passphrase never leaves the operator's machine except on the standard input of geli.

deploy.py and unlock.py run against FreeBSD commands, so the pyinfra CLI cannot run them here for real. They are
planned through the harness the way the CLI plans them, at its highest verbosity: pyinfra's logging captured at
DEBUG (what -vvv and --debug print), --diff on, the operation dumps of --debug-operations (text and JSON), the
lines logged when each operation starts, every operation evaluated again as in the execution phase, and each
command as the SSH connector would send it. The passphrase must appear in none of that, and must be the standard
input of exactly the geli commands that need it.
"""

from __future__ import annotations

import logging
import re
import sys

import pytest
from harness import plan, pyinfra_records
from pyinfra.api import Config, StringCommand
from test_deploy_plan import DEPLOY, server
from test_unlock_plan import UNLOCK, fixture

from torjail import secrets

PASSPHRASE = "s3cret passphrase: never printed"
GELI_WITH_STDIN = re.compile(r"(^|&& |if ! |fi; )geli (init -e \S+ -l \d+ -s \d+ -B none -J -|attach -j -) md10(;| &&|$)")

SCENARIOS = {
    "deploy on a fresh server": (DEPLOY, lambda: server("deploy_fresh"), 2),
    "deploy over a half-made image": (DEPLOY, lambda: server("deploy_half_made"), 2),
    "unlock after a reboot": (UNLOCK, lambda: fixture("unlock_locked"), 1),
}


@pytest.fixture(autouse=True)
def fresh_passphrase_cache(monkeypatch):
    monkeypatch.setattr(secrets, "_CACHE", {})
    monkeypatch.setattr(Config, "DIFF", True)


def everything_pyinfra_shows(result, capsys, caplog) -> list[str]:
    """Every text pyinfra records or prints about the planned operations, in the planning and execution phases."""
    recorded = pyinfra_records(result)
    printed = capsys.readouterr()
    assert "Operation" in printed.err or "operations" in printed.out, "the dumps really printed something"
    return recorded + [printed.out, printed.err, caplog.text]


def plan_scenario(name):
    deploy, load, _ = SCENARIOS[name]
    loaded = load()
    return plan(deploy, data=loaded["data"], facts=loaded["facts"])


@pytest.mark.parametrize("name", SCENARIOS)
def test_passphrase_from_the_environment_shows_nowhere(name, monkeypatch, capsys, caplog):
    monkeypatch.setenv("TORJAIL_GELI_PASSPHRASE", PASSPHRASE)
    caplog.set_level(logging.DEBUG)
    result = plan_scenario(name)
    leaks = [text for text in everything_pyinfra_shows(result, capsys, caplog) if PASSPHRASE in text]
    assert leaks == []


@pytest.mark.parametrize("name", SCENARIOS)
def test_passphrase_is_the_standard_input_of_the_geli_commands_only(name, monkeypatch):
    monkeypatch.setenv("TORJAIL_GELI_PASSPHRASE", PASSPHRASE)
    result = plan_scenario(name)
    fed = [command for commands in result.pyinfra_commands(executing=True) for command in commands
           if getattr(command, "connector_arguments", {}).get("_stdin") is not None]
    assert len(fed) == SCENARIOS[name][2]
    for command in fed:
        assert command.connector_arguments["_stdin"] == PASSPHRASE
        assert GELI_WITH_STDIN.search(command.get_raw_value()), command.get_raw_value()


def test_passphrase_from_a_command_shows_nowhere(tmp_path, monkeypatch, capsys, caplog):
    """The password-manager source: the settings name a command, its output is the passphrase."""
    monkeypatch.delenv("TORJAIL_GELI_PASSPHRASE", raising=False)
    manager = tmp_path / "password-manager"
    manager.write_text(f"#!{sys.executable}\nprint({PASSPHRASE!r})\n")
    manager.chmod(0o755)
    loaded = server("deploy_fresh")
    caplog.set_level(logging.DEBUG)
    result = plan(DEPLOY, data={**loaded["data"], "geli_passphrase_command": [str(manager)]},
                  facts=loaded["facts"])
    stdin = [command.connector_arguments.get("_stdin") for commands in result.pyinfra_commands()
             for command in commands if isinstance(command, StringCommand)]
    assert stdin.count(PASSPHRASE) == 2, "the command's passphrase reached geli"
    leaks = [text for text in everything_pyinfra_shows(result, capsys, caplog) if PASSPHRASE in text]
    assert leaks == []
