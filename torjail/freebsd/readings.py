"""One reading of a fact per host and phase, shared by every operation that asks for it.

pyinfra 3 does not cache facts: each `host.get_fact` runs its command again. A deploy plans every operation
first, then executes each one again against the then-current host, and nothing changes the server while it
plans: one reading per host serves every operation of a phase (planning, then execution). Operations that
change what they read update the reading they got (it is the same object for the whole phase).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import TypeVar

from pyinfra import host
from pyinfra.context import ctx_host

_T = TypeVar("_T")
_readings: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def read_once(key: Hashable, read: Callable[[], _T]) -> _T:
    """What `read()` returns for this host, called once per phase and key; the key names the question (the fact
    and its arguments), so different callers never share a reading by accident."""
    executing = bool(getattr(host.state, "is_executing", False))
    per_host = _readings.setdefault(ctx_host.get(), {})
    full_key = (executing, key)
    if full_key not in per_host:
        per_host[full_key] = read()
    return per_host[full_key]
