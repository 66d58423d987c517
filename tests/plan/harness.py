"""Plan a deploy file through pyinfra's API against one fake host whose facts come from a fixture.

Nothing connects anywhere: every fact the deploy (or a pyinfra operation it calls) asks for is
answered from the fixture, and a fact the fixture lacks stops the plan with an error naming the
fact and its arguments, so fixtures stay complete. The result is the ordered list of operations
with the commands each would run (standard input marked, never shown) and whether it changes
anything.

Fixture (YAML or a dict):

    data:                      # host data, as inventory.py / group_data would give it
      relay_nickname: Test
    facts:
      md.MdDevices: {}                         # a fact without arguments: its value
      rc.RcConf:                               # a fact with arguments: one value per argument set
        "jail=None, path=/etc/rc.conf": {pf_enable: "YES"}
      server.Os: FreeBSD
      files.File:
        "path=/etc/pf.conf": null

A fact is named by its module's last part and its class (``geli.GeliProviders``, ``files.File``);
its arguments are written as pyinfra writes them in its logs: every argument of the fact's
``command()``, defaults included, sorted, ``key=value`` joined by ``", "``.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from inspect import getcallargs
from io import StringIO
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import yaml
from pyinfra.api import Config, Inventory, State
from pyinfra.api.arguments import all_global_arguments
from pyinfra.api.command import (
    FileDownloadCommand,
    FileUploadCommand,
    FunctionCommand,
    PyinfraCommand,
    StringCommand,
)
from pyinfra.api.facts import ShortFactBase
from pyinfra.api.host import Host
from pyinfra.api.state import StateStage
from pyinfra.api.util import get_kwargs_str
from pyinfra.connectors.util import CommandOutput
from pyinfra.context import ctx_host, ctx_state

from torjail.freebsd import readings
from torjail.freebsd.readings import Survey

STDIN_MARK = "< [stdin]"
_GLOBAL_ARGUMENTS = {name for name, _ in all_global_arguments()}


class MissingFactError(KeyError):
    """The fixture has no value for a fact (or for these arguments of it)."""

    def __str__(self) -> str:
        return str(self.args[0])


def fact_key(cls: type) -> str:
    """The fixture name of a fact class: last module part and class name, e.g. ``rc.RcConf``."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def fact_arguments(cls: type, args: tuple | list | None, kwargs: dict | None) -> str:
    """The fixture key of a fact's arguments: ``key=value`` of every command() argument, sorted."""
    args = list(args or [])
    kwargs = {key: value for key, value in (kwargs or {}).items() if key not in _GLOBAL_ARGUMENTS}
    if not args and not kwargs and not _takes_arguments(cls):
        return ""
    call = getcallargs(cls().command, *args, **kwargs)
    call.pop("self", None)
    return get_kwargs_str(call)


def _takes_arguments(cls: type) -> bool:
    command = getattr(cls, "command", None)
    if not callable(command):
        return False
    return len(inspect.signature(command).parameters) > 1


class FactFixture:
    """Answers pyinfra fact requests from a ``{fact key: value or {argument key: value}}`` mapping."""

    def __init__(self, facts: dict[str, Any]):
        self.facts = facts
        self.classes: dict[str, type] = {}
        self.asked: list[tuple[str, str]] = []
        self.surveyed: list[tuple[str, str]] = []

    def survey(self, questions) -> dict[int, Any]:
        """A Survey's answers: the questions the fixture has a value for (a survey question the deploy then
        does not ask need not be in the fixture); recorded in ``surveyed``, not in ``asked``."""
        answers = {}
        for index, (cls, arguments) in enumerate(questions):
            key = (fact_key(cls), fact_arguments(cls, None, arguments))
            self.surveyed.append(key)
            before = len(self.asked)
            try:
                answers[index] = self.value(cls, None, arguments)
            except MissingFactError:
                pass
            del self.asked[before:]
        return answers

    def value(self, cls: type, args=None, kwargs=None) -> Any:
        if issubclass(cls, ShortFactBase):
            return cls().process_data(self.value(cls.fact, args, kwargs))

        key = fact_key(cls)
        known = self.classes.setdefault(key, cls)
        if known is not cls:
            raise MissingFactError(f"two fact classes share the fixture name {key}: {known} and {cls}")
        arguments = fact_arguments(cls, args, kwargs)
        self.asked.append((key, arguments))

        if key not in self.facts:
            where = f" with arguments {arguments!r}" if arguments else ""
            raise MissingFactError(f"the fixture has no fact {key}{where}")
        value = self.facts[key]
        if arguments:
            if not isinstance(value, dict) or arguments not in value:
                have = sorted(value) if isinstance(value, dict) else value
                raise MissingFactError(
                    f"the fixture has fact {key} but not for arguments {arguments!r} (it has: {have})",
                )
            value = value[arguments]
        value = copy.deepcopy(value)
        if isinstance(cls().default(), set) and isinstance(value, list):
            value = set(value)
        return value


@dataclass
class PlannedOperation:
    """One operation of the plan, for the fake host."""

    names: list[str]
    args: list[str]
    commands: list[str]
    noops: list[str]
    uploads: dict[str, str] = field(default_factory=dict)
    conditional: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.commands)

    @property
    def name(self) -> str:
        return self.names[0] if self.names else ""


@dataclass
class Plan:
    """The ordered operations a deploy file would run, with the pyinfra state that produced them."""

    operations: list[PlannedOperation]
    state: State
    host: Host
    fixture: FactFixture

    @property
    def commands(self) -> list[str]:
        return [command for operation in self.operations for command in operation.commands]

    @property
    def changed(self) -> list[PlannedOperation]:
        return [operation for operation in self.operations if operation.changed]

    def uploads(self) -> dict[str, str]:
        files: dict[str, str] = {}
        for operation in self.operations:
            files.update(operation.uploads)
        return files

    def pyinfra_commands(self, executing: bool = False) -> list[list[PyinfraCommand]]:
        """Run every operation again, as pyinfra would (``executing``: as in its execution phase, each operation
        completing with its commands before the next one runs), and return the command objects themselves, per
        operation."""
        return [commands for commands, _ in _evaluate(self.state, self.host, self.fixture, executing)]


def load_fixture(path: str | os.PathLike) -> dict:
    with open(path, encoding="utf-8") as handle:
        fixture = yaml.safe_load(handle) or {}
    unknown = set(fixture) - {"facts", "data"}
    if unknown:
        raise ValueError(f"{path}: unknown fixture sections {sorted(unknown)} (expected facts, data)")
    return fixture


def load_group_data(path: str | os.PathLike) -> dict:
    """The public names a group_data file defines, as pyinfra's CLI reads them."""
    namespace: dict[str, Any] = {"__file__": str(path)}
    code = compile(Path(path).read_text(encoding="utf-8"), str(path), "exec")
    exec(code, namespace)
    return {
        key: value
        for key, value in namespace.items()
        if not key.startswith("_") and not isinstance(value, ModuleType)
    }


def render_command(command: PyinfraCommand | str, uploads: dict[str, str]) -> str:
    """A command as text: what the shell would run, `< [stdin]` when it is fed standard input."""
    if isinstance(command, str):
        command = StringCommand(command.strip())
    if isinstance(command, StringCommand):
        text = command.get_raw_value()
        if command.connector_arguments.get("_stdin") is not None:
            text = f"{text} {STDIN_MARK}"
        return text
    if isinstance(command, FileUploadCommand):
        uploads[str(command.dest)] = _read_source(command.src)
        return f"upload {command.dest}"
    if isinstance(command, FileDownloadCommand):
        return f"download {command.src}"
    if isinstance(command, FunctionCommand):
        return f"function {command.function.__name__}"
    return repr(command)


def _read_source(src: Any) -> str:
    if hasattr(src, "read"):
        if hasattr(src, "seek"):
            src.seek(0)
        data = src.getvalue() if isinstance(src, StringIO) else src.read()
        return data.decode() if isinstance(data, bytes) else data
    return Path(src).read_text(encoding="utf-8")


@contextmanager
def _patched(fixture: FactFixture, noops: list[str]):
    def get_fact(state, host, cls, args=None, kwargs=None, **_):
        if cls is Survey:
            return fixture.survey(kwargs["questions"])
        return fixture.value(cls, args, kwargs)

    def noop(self, description):
        noops.append(description)

    with ExitStack() as stack:
        stack.enter_context(mock.patch("pyinfra.api.host.get_fact", get_fact))
        stack.enter_context(mock.patch.object(Host, "noop", noop))
        yield


def _evaluate(state: State, host: Host, fixture: FactFixture, executing: bool = False):
    """(commands, noops) of every operation of host, in order, answered from the fixture."""
    noops: list[str] = []
    results = []
    was_executing = state.is_executing
    state.is_executing = executing
    # the phase starts again from the readings as the server gave them: what the operations planned into them
    # (a value set, a module loaded) counts once per phase, as in pyinfra's own planning and execution
    store = readings._readings.get(host)
    if store is not None:
        store.shared.clear()
    try:
        with _patched(fixture, noops), ctx_state.use(state), ctx_host.use(host):
            for op_hash in state.get_op_order():
                if op_hash not in state.ops[host]:
                    continue
                noops.clear()
                op_data = state.get_op_data_for_host(host, op_hash)
                commands = list(op_data.command_generator())
                if executing and not op_data.operation_meta.is_complete():
                    op_data.operation_meta.set_complete(True, commands, CommandOutput([]))
                results.append((commands, list(noops)))
    finally:
        state.is_executing = was_executing
    return results


def plan(
    deploy_file: str | os.PathLike,
    facts: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    fixture: str | os.PathLike | None = None,
    cwd: str | os.PathLike | None = None,
    host_name: str = "server",
) -> Plan:
    """
    Plan deploy_file for one host: its facts from ``facts`` (or the fixture file's ``facts``), its
    host data from ``data`` merged over the fixture's ``data``. ``cwd`` is the directory pyinfra's
    CLI would run from (relative file and template paths start there); by default the deploy
    file's directory.
    """
    deploy_path = Path(deploy_file).resolve()
    code = compile(deploy_path.read_text(encoding="utf-8"), str(deploy_path), "exec")

    def run_deploy_file():
        exec(code, {"__file__": str(deploy_path), "__name__": "__pyinfra_deploy__"})

    return plan_calls(
        run_deploy_file,
        facts=facts,
        data=data,
        fixture=fixture,
        cwd=cwd or deploy_path.parent,
        host_name=host_name,
        deploy_filename=str(deploy_path),
    )


def plan_operation(operation, *args, facts: dict[str, Any] | None = None, **kwargs) -> PlannedOperation:
    """Plan one operation call (e.g. ``plan_operation(rc.value, "pf_enable", "YES", facts=...)``)."""
    planned = plan_calls(lambda: operation(*args, **kwargs), facts=facts)
    (only,) = planned.operations
    return only


def plan_calls(
    run,
    facts: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    fixture: str | os.PathLike | None = None,
    cwd: str | os.PathLike | None = None,
    host_name: str = "server",
    deploy_filename: str | None = None,
) -> Plan:
    """Plan whatever operations run() calls, for one fake host (the engine behind plan())."""
    loaded = load_fixture(fixture) if fixture else {}
    all_facts = {**loaded.get("facts", {}), **(facts or {})}
    host_data = {**loaded.get("data", {}), **(data or {})}

    inventory = Inventory(([(host_name, host_data)], {}))
    config = Config()
    config.TEMP_DIR = "/tmp"
    state = State(inventory, config)
    state.cwd = str(Path(cwd).resolve()) if cwd else os.getcwd()
    state.current_deploy_filename = deploy_filename
    state.set_stage(StateStage.Prepare)
    host = inventory.get_host(host_name)
    host.connected = True  # nothing to connect to: every fact comes from the fixture

    fact_fixture = FactFixture(all_facts)
    with _patched(fact_fixture, []), ctx_state.use(state), ctx_host.use(host):
        run()

    operations = []
    op_hashes = [op_hash for op_hash in state.get_op_order() if op_hash in state.ops[host]]
    for op_hash, (commands, noops) in zip(op_hashes, _evaluate(state, host, fact_fixture)):
        meta = state.op_meta[op_hash]
        op_data = state.get_op_data_for_host(host, op_hash)
        uploads: dict[str, str] = {}
        operations.append(
            PlannedOperation(
                names=sorted(meta.names),
                args=list(meta.args),
                commands=[render_command(command, uploads) for command in commands],
                noops=noops,
                uploads=uploads,
                conditional=bool(op_data.global_arguments.get("_if")),
            ),
        )

    return Plan(operations=operations, state=state, host=host, fixture=fact_fixture)


def pyinfra_records(result: Plan) -> list[str]:
    """Every text pyinfra records about a plan's operations, in the planning and execution phases (commands as
    sent over SSH, names, arguments, hashes, the state dumped by --debug-operations), and prints the dumps of
    --debug-operations (text and JSON) and the lines logged as each operation starts: capture those too."""
    from pyinfra.api.util import log_operation_start
    from pyinfra.connectors.util import make_unix_command_for_host
    from pyinfra_cli.prints import print_state_operations, print_state_operations_json
    from pyinfra_cli.util import json_encode

    state, host = result.state, result.host
    recorded = [json.dumps(result.commands), repr(result.operations)]
    for phase in (False, True):
        for commands in result.pyinfra_commands(executing=phase):
            for command in commands:
                recorded += [repr(command), str(command)]
                if isinstance(command, StringCommand):
                    recorded += [command.get_raw_value(), command.get_masked_value()]
                    with ctx_state.use(state), ctx_host.use(host):
                        recorded.append(make_unix_command_for_host(state, host, command).get_raw_value())
    for op_hash, meta in state.op_meta.items():
        recorded += [op_hash, repr(sorted(meta.names)), repr(meta.args), repr(meta.global_arguments)]
        recorded.append(repr(state.get_op_data_for_host(host, op_hash)))
    recorded.append(json.dumps(state.ops[host], default=json_encode))
    recorded.append(json.dumps(state.op_meta, default=json_encode))
    with ctx_state.use(state), ctx_host.use(host):
        print_state_operations(state)
        print_state_operations_json(state)
        for op_hash in state.get_op_order():
            log_operation_start(state.get_op_meta(op_hash))
    return recorded
