"""Facts read once while nothing changes on the server, and many facts read with one remote command.

Every remote command costs a round trip, and operators deploy over links of 50 to 150 ms. pyinfra 3 does not cache
facts: each `host.get_fact` runs its command again. A deploy plans every operation first (reading what each one
needs), then executes each one again against the then-current server. Nothing changes the server while it plans,
and nothing changes it during execution until an operation runs a command: so a reading stays good from the
planning phase into the execution phase until the first operation that changed something (or failed), and is
taken again after it.

`fact(cls, **arguments)` is `host.get_fact` through that rule. `read_together(questions)` asks many facts in one
command (the `Together` fact), so that the questions a deploy knows it will ask cost one round trip; whatever
`Together` could not answer (a missing program, a failing command, output its fact could not process) is left
for `fact` to ask alone, with pyinfra's own handling of the failure.

Operations read their facts before their first command: a reading taken inside an operation after one of its own
commands ran would not see that command, since the change counts once the operation completes. Within one phase
the readings are shared objects: an operation that plans a change to what it read updates the reading (a module
planned for loading counts as loaded), and the execution phase starts from the reading as the server gave it.
"""

from __future__ import annotations

import copy
import secrets
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from pyinfra import host
from pyinfra.api import FactBase, StringCommand
from pyinfra.api.exceptions import FactProcessError
from pyinfra.context import ctx_host

_T = TypeVar("_T")
_readings: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
UNANSWERED = object()  # what Together gives for a question it left for its fact alone


def _frozen(value: Any) -> Hashable:
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, set):
        return tuple(sorted(value))
    return value


def question_key(cls: type, arguments: dict) -> Hashable:
    """The reading's key for a fact class and its arguments."""
    return (cls, _frozen(arguments))


def _changes(current_host) -> int:
    """How many operations have changed the server (or failed) so far in this execution phase; 0 while planning."""
    state = current_host.state
    if not getattr(state, "is_executing", False):
        return 0
    count = 0
    for data in state.ops.get(current_host, {}).values():
        meta = data.operation_meta
        if meta.is_complete() and (meta.executed or not meta.did_succeed()):
            count += 1
    return count


class _Store:
    """One host's readings: as the server gave them (with the number of changes seen then), and per phase the
    shared copies operations update."""

    def __init__(self):
        self.given: dict[Hashable, tuple[int, Any]] = {}
        self.shared: dict[tuple[bool, Hashable], tuple[int, Any]] = {}

    def get(self, key: Hashable, read: Callable[[], _T]) -> _T:
        current_host = ctx_host.get()
        changes = _changes(current_host)
        phase = (bool(getattr(current_host.state, "is_executing", False)), key)
        shared = self.shared.get(phase)
        if shared and shared[0] == changes:
            return shared[1]
        given = self.given.get(key)
        if given and given[0] == changes:
            value = copy.deepcopy(given[1])
        else:
            value = read()
            self.given[key] = (changes, copy.deepcopy(value))
        self.shared[phase] = (changes, value)
        return value

    def fresh(self, key: Hashable) -> bool:
        given = self.given.get(key)
        return given is not None and given[0] == _changes(ctx_host.get())

    def give(self, key: Hashable, value: Any) -> None:
        self.given[key] = (_changes(ctx_host.get()), value)


def _store() -> _Store:
    return _readings.setdefault(ctx_host.get(), _Store())


def read_once(key: Hashable, read: Callable[[], _T]) -> _T:
    """What `read()` returns for this host, called again only after the server changed; the key names the
    question (the fact and its arguments), so different callers never share a reading by accident."""
    return _store().get(key, read)


def fact(cls: type[FactBase], **arguments) -> Any:
    """`host.get_fact(cls, **arguments)`, read again only after the server changed."""
    return read_once(question_key(cls, arguments), lambda: host.get_fact(cls, **arguments))


def _value_of(attribute, arguments: dict):
    return attribute(**arguments) if callable(attribute) else attribute


class Together(FactBase):
    """
    Returns the answers of several facts, read with one command: a list in the order of the questions, each the
    value the fact gives (its default when its command printed nothing), or ``UNANSWERED`` when the fact's program
    is missing, its command failed or its output did not process.

    + questions: ``[(FactClass, {argument: value}), ...]``

    .. code:: python

        [{"kern.ipc.somaxconn": "4096"}, {"kernel", "geom_eli", "pf"}, UNANSWERED]

    Each fact's output is framed by lines that carry a token drawn afresh for every reading: a file the jail
    controls, printed by one of the facts, cannot forge the frame of another.
    """

    def command(self, questions) -> StringCommand:
        self._token = secrets.token_hex(8)
        self._facts = []
        parts = []
        for index, (cls, arguments) in enumerate(questions):
            fact_object = cls()
            self._facts.append(fact_object)
            command = _value_of(fact_object.command, arguments)
            required = _value_of(fact_object.requires_command, arguments)
            begin = f"echo '@@{self._token} {index} begin';"
            status = f"echo \"@@{self._token} {index} status $?\";"
            if required:
                parts += [begin, "if command -v", required, ">/dev/null 2>&1; then (", command, ");", status,
                          f"else echo '@@{self._token} {index} missing'; fi;"]
            else:
                parts += [begin, "(", command, ");", status]
        return StringCommand(*parts, "true")

    @staticmethod
    def default() -> list:
        return []

    def process(self, output: list[str]) -> list:
        answers = [UNANSWERED] * len(self._facts)
        frame = f"@@{self._token} "
        index, lines = None, []
        for line in output:
            if not line.startswith(frame):
                if index is not None:
                    lines.append(line)
                continue
            words = line[len(frame):].split()
            if len(words) >= 2 and words[1] == "begin":
                index, lines = int(words[0]), []
            elif len(words) == 3 and words[1] == "status" and index == int(words[0]):
                if words[2] == "0":
                    answers[index] = self._answer(self._facts[index], lines)
                index = None
            else:
                index = None
        return answers

    @staticmethod
    def _answer(fact_object: FactBase, lines: list[str]):
        if not lines:
            return fact_object.default()
        try:
            return fact_object.process(lines)
        except FactProcessError:
            return UNANSWERED


def read_together(questions: list[tuple[type[FactBase], dict]]) -> None:
    """Ask with one command every question of `questions` that has no reading since the server last changed; the
    answers serve `fact` later (questions Together left unanswered are asked alone when `fact` needs them)."""
    store = _store()
    wanted = {}
    for cls, arguments in questions:
        key = question_key(cls, arguments)
        if key not in wanted and not store.fresh(key):
            wanted[key] = (cls, arguments)
    if not wanted:
        return
    answers = host.get_fact(Together, questions=list(wanted.values()))
    for key, answer in zip(wanted, answers):
        if answer is not UNANSWERED:
            store.give(key, answer)
