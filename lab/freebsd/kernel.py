"""Kernel state of a lab host: what a FreeBSD kernel would hold in memory (md units, GELI providers, jails,
swap devices, loaded modules, sysctls, pf rules, cloned interfaces).

It lives as one JSON file per subsystem under KERNEL_DIR, a tmpfs that the lab mounts afresh at every boot,
so a reboot drops it exactly as a reboot drops kernel state. Updates hold an exclusive lock, so two commands
running at once (pyinfra runs several) never lose each other's changes.
"""

import contextlib
import fcntl
import json
import os

KERNEL_DIR = os.environ.get("LAB_KERNEL_DIR", "/.kernel")


def _path(subsystem):
    return os.path.join(KERNEL_DIR, subsystem + ".json")


def read(subsystem, default=None):
    """Return the state of one subsystem (a JSON value), or `default` when nothing was recorded yet."""
    try:
        with open(_path(subsystem)) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


@contextlib.contextmanager
def update(subsystem, default):
    """Lock one subsystem, yield its state for in-place changes, and write it back when the block succeeds."""
    os.makedirs(KERNEL_DIR, exist_ok=True)
    with open(_path(subsystem) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = read(subsystem, default)
        yield state
        tmp = _path(subsystem) + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(state, handle, indent=1, sort_keys=True)
        os.replace(tmp, _path(subsystem))
