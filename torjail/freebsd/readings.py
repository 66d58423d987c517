"""Facts read once while nothing changes on the server.

Every remote command costs a round trip, and operators deploy over links of 50 to 150 ms. pyinfra 3 does not cache
facts: each `host.get_fact` runs its command again. A deploy plans every operation first (reading what each one
needs), then executes each one again against the then-current server. Nothing changes the server while it plans,
and nothing changes it during execution until an operation runs a command: so a reading stays good from the
planning phase into the execution phase until the first operation that changed something (or failed), and is
taken again after it.

`fact(cls, **arguments)` is `host.get_fact` through that rule.

Operations read their facts before their first command: a reading taken inside an operation after one of its own
commands ran would not see that command, since the change counts once the operation completes. Within one phase
the readings are shared objects: an operation that plans a change to what it read updates the reading (a module
planned for loading counts as loaded), and the execution phase starts from the reading as the server gave it.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from pyinfra import host
from pyinfra.api import FactBase
from pyinfra.context import ctx_host

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


def _store() -> _Store:
    return _readings.setdefault(ctx_host.get(), _Store())


def read_once(key: Hashable, read: Callable[[], _T]) -> _T:
    """What `read()` returns for this host, called again only after the server changed; the key names the
    question (the fact and its arguments), so different callers never share a reading by accident."""
    return _store().get(key, read)


def fact(cls: type[FactBase], **arguments) -> Any:
    """`host.get_fact(cls, **arguments)`, read again only after the server changed."""
    return read_once(_question_key(cls, arguments), lambda: host.get_fact(cls, **arguments))
