"""Facts read once while nothing changes on the server.

Every remote command costs a round trip, and operators deploy over links of 50 to 150 ms. pyinfra 3 does not cache
facts: each `host.get_fact` runs its command again. A deploy plans every operation first (reading what each one
needs), then executes each one again against the then-current server. Nothing changes the server while it plans,
and nothing changes it during execution until an operation runs a command: so a reading stays good from the
planning phase into the execution phase until the first operation that changed something (or failed), and is
taken again after it.

`fact(cls, **arguments)` is `host.get_fact` through that rule. `survey(questions)` takes the readings of many
facts with one remote command (the Survey fact), so that a run which changes nothing waits for one round trip
where it would wait for one per fact; whatever the survey could not answer is read alone when asked, as before.

Operations read their facts before their first command: a reading taken inside an operation after one of its own
commands ran would not see that command, since the change counts once the operation completes. Within one phase
the readings are shared objects: an operation that plans a change to what it read updates the reading (a module
planned for loading counts as loaded), and the execution phase starts from the reading as the server gave it.

What a change makes stale has a scope. A question may say what its answer depends on (`reading_scopes` on the
fact class, or a file fact's path), and an operation may say what it changes (`scoped`): a change then makes
stale only the questions whose scopes overlap the operation's, except the readings the operation vouches for
(it updated them as it planned, as `rc.value` does with the file it sets a value in). A question or an
operation that says nothing covers everything, as before; a failed operation makes every reading stale. On a
fresh server, where nearly every operation changes something, this keeps the survey's answers about the files
no operation has written yet.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
import secrets
import weakref
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pyinfra import host
from pyinfra.api import FactBase, StringCommand
from pyinfra.context import ctx_host
from pyinfra.facts.files import Directory, File, FileContents, FindInFile, Link, Sha1File

_T = TypeVar("_T")
_readings: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _frozen(value: Any) -> Hashable:
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, set):
        return tuple(sorted(value))
    return value


def _question_key(cls: type, arguments: dict) -> Hashable:
    """The reading's key for a fact class and its arguments."""
    return (cls, _frozen(arguments))


Scope = tuple[str, ...]
"""What a reading depends on or an operation changes, as a path of names: ("file", "etc", "rc.conf"),
("sysctl", "kern.maxfiles"), ("kld",). Two scopes overlap when one begins with the other."""

_FILE_FACTS = (File, Sha1File, Directory, Link, FindInFile, FileContents)


def path_scope(path: str) -> Scope:
    """The scope of a file or directory at `path`, and of everything below it."""
    return ("file", *[part for part in path.split("/") if part])


def _overlap(a: Scope, b: Scope) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def question_scopes(cls: type, arguments: dict) -> tuple[Scope, ...] | None:
    """What the answer of a question depends on: the fact class's `reading_scopes(**arguments)`, a file fact's
    path, or None (everything) for any other fact."""
    own = getattr(cls, "reading_scopes", None)
    if own is not None:
        scopes = own(**arguments)
        return None if scopes is None else tuple(scopes)
    if cls in _FILE_FACTS and isinstance(arguments.get("path"), str):
        return (path_scope(arguments["path"]),)
    return None


@dataclass(frozen=True)
class Touches:
    """What one operation may change (scopes), and the questions whose readings it keeps true (vouched: it updated
    the shared reading with what it changes, or what it changes leaves that answer as it was)."""

    scopes: tuple[Scope, ...]
    vouched: frozenset = frozenset()

    def stales(self, key: Hashable, scopes: tuple[Scope, ...] | None) -> bool:
        if key in self.vouched:
            return False
        return scopes is None or any(_overlap(mine, theirs) for mine in self.scopes for theirs in scopes)


def touches(*scopes: Scope, vouched: Iterable[tuple[type, dict]] = ()) -> Touches:
    """A Touches for `scoped`: the scopes changed, and the (fact class, arguments) questions vouched for."""
    return Touches(tuple(scopes), frozenset(_question_key(cls, arguments) for cls, arguments in vouched))


def scoped(declare: Callable[..., Touches | None]) -> Callable:
    """An operation (put above pyinfra's @operation) that changes only what `declare(**its arguments)` says; None
    from `declare` means everything. Called as another operation's `_inner`, it declares nothing: the outer
    operation declares for itself."""

    def decorate(op):
        signature = inspect.signature(op._inner)

        @functools.wraps(op)
        def declared(*args, **kwargs):
            meta = op(*args, **kwargs)
            bound = signature.bind(*args, **{key: value for key, value in kwargs.items()
                                             if key in signature.parameters})
            bound.apply_defaults()
            touched = declare(**bound.arguments)
            if touched is not None:
                _store().declared[meta._hash] = touched
            return meta

        return declared

    return decorate


def _changes(current_host, key: Hashable, scopes: tuple[Scope, ...] | None) -> int:
    """How many operations have, so far in this execution phase, changed what the question `key` (with `scopes`)
    depends on, or failed; 0 while planning."""
    state = current_host.state
    if not getattr(state, "is_executing", False):
        return 0
    declared = _store_of(current_host).declared
    count = 0
    for op_hash, data in state.ops.get(current_host, {}).items():
        meta = data.operation_meta
        if not meta.is_complete():
            continue
        if not meta.did_succeed():
            count += 1
        elif meta.executed:
            touched = declared.get(op_hash)
            if touched is None or touched.stales(key, scopes):
                count += 1
    return count


class _Store:
    """One host's readings: as the server gave them (with the number of changes seen then), and per phase the
    shared copies operations update."""

    def __init__(self):
        self.given: dict[Hashable, tuple[int, Any]] = {}
        self.shared: dict[tuple[bool, Hashable], tuple[int, Any]] = {}
        self.declared: dict[str, Touches] = {}
        # the survey's questions that have scopes: when one of them goes stale, all that are stale are read again
        self.surveyed: dict[Hashable, tuple[type, dict]] = {}

    def get(self, key: Hashable, read: Callable[[], _T], scopes: tuple[Scope, ...] | None = None) -> _T:
        current_host = ctx_host.get()
        changes = _changes(current_host, key, scopes)
        phase = (bool(getattr(current_host.state, "is_executing", False)), key)
        shared = self.shared.get(phase)
        if shared and shared[0] == changes:
            return shared[1]
        given = self.given.get(key)
        if not (given and given[0] == changes) and key in self.surveyed:
            survey(list(self.surveyed.values()))
            given = self.given.get(key)
        if given and given[0] == changes:
            value = copy.deepcopy(given[1])
        else:
            value = read()
            self.given[key] = (changes, copy.deepcopy(value))
        self.shared[phase] = (changes, value)
        return value


def _store_of(current_host) -> _Store:
    return _readings.setdefault(current_host, _Store())


def _store() -> _Store:
    return _store_of(ctx_host.get())


def read_once(key: Hashable, read: Callable[[], _T]) -> _T:
    """What `read()` returns for this host, called again only after the server changed; the key names the
    question (the fact and its arguments), so different callers never share a reading by accident."""
    return _store().get(key, read)


def fact(cls: type[FactBase], **arguments) -> Any:
    """`host.get_fact(cls, **arguments)`, read again only after the server changed what it depends on."""
    return _store().get(_question_key(cls, arguments), lambda: host.get_fact(cls, **arguments),
                        question_scopes(cls, arguments))


class Questions(tuple):
    """The (fact class, arguments) pairs one survey answers; shown in pyinfra's log by their number alone."""

    def __str__(self) -> str:
        return f"{len(self)} facts"


def _command(fact: FactBase, attribute: str, arguments: dict):
    """A fact's command or requires_command for these arguments, as pyinfra makes it."""
    value = getattr(fact, attribute)
    return value(**arguments) if callable(value) else value


class Survey(FactBase):
    """
    Several facts read by one remote command: each fact's command runs in its own subshell, as pyinfra would run
    it alone, between two lines that carry a random token, the second with the command's exit status. Returns
    ``{index of the question: value}`` for each fact whose command succeeded and whose output its class could
    process; a fact that failed (its command missing, an error, output it could not read) has no value here and
    is read alone when asked, so that pyinfra reports it as it always does. The survey itself always succeeds.

    **Example:**

    .. code:: python

        host.get_fact(Survey, questions=Questions([(Jails, {}), (RcConf, {"path": "/etc/rc.conf", "jail": None})]))
    """

    def command(self, questions: Questions):
        self.questions = list(questions)
        self.facts = [cls() for cls, _ in self.questions]
        self.token = f"torjail-survey-{secrets.token_hex(8)}"
        # questions whose command is the same (pyinfra's File and Directory of one path) run it once
        self.sources: list[int] = []
        first: dict[tuple, int] = {}
        parts: list = []
        for index, (fact, (_, arguments)) in enumerate(zip(self.facts, self.questions)):
            requires = _command(fact, "requires_command", dict(arguments))
            command = _command(fact, "command", dict(arguments))
            source = first.setdefault((str(requires), str(command)), index)
            self.sources.append(source)
            if source != index:
                continue
            parts += ["echo", f"{self.token}-{index};"]
            if requires:
                parts += ["command", "-v", requires, ">/dev/null", "2>&1", "&&"]
            parts += ["(", command, ")", "</dev/null;", "echo", f'"{self.token}-{index} $?";']
        return StringCommand(*parts, "exit", "0")

    def process(self, output):
        succeeded: dict[int, list[str]] = {}
        begins = {f"{self.token}-{index}": index for index in set(self.sources)}
        current, lines = None, []
        for line in output:
            if current is None:
                current, lines = begins.get(line), []
                continue
            end = re.fullmatch(rf"(.*){re.escape(self.token)}-{current} (\d+)", line)
            if end is None:
                lines.append(line)
                continue
            if end[1]:  # the command's last line had no newline
                lines.append(end[1])
            if end[2] == "0":
                succeeded[current] = lines
            current = None
        answers: dict[int, Any] = {}
        for index, source in enumerate(self.sources):
            if source not in succeeded:
                continue
            fact, lines = self.facts[index], succeeded[source]
            try:
                answers[index] = fact.process(list(lines)) if lines else fact.default()
            except Exception:  # noqa: BLE001: read alone, pyinfra then reports the error as its own
                pass
        return answers


def survey(questions: list[tuple[type[FactBase], dict]]) -> None:
    """Take the readings of `questions` ((fact class, arguments) pairs, as `fact` would be asked them) with one
    remote command, those not already read since the server last changed what they depend on; `fact` then
    answers them from here. When a change makes one of the questions with scopes stale (a file, rc.conf, the
    sysctls), the first of them asked again is read with every other stale one of them, in one command."""
    store, current_host = _store(), ctx_host.get()
    asked, changes = [], []
    for cls, arguments in questions:
        key = _question_key(cls, arguments)
        scopes = question_scopes(cls, arguments)
        if scopes is not None:
            store.surveyed[key] = (cls, arguments)
        count = _changes(current_host, key, scopes)
        if store.given.get(key, (None,))[0] != count:
            asked.append((cls, arguments))
            changes.append(count)
    if not asked:
        return
    answers = host.get_fact(Survey, questions=Questions(asked), _ignore_errors=True)
    for index, value in (answers or {}).items():
        cls, arguments = asked[index]
        store.given[_question_key(cls, arguments)] = (changes[index], copy.deepcopy(value))
