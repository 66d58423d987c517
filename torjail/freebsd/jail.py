"""Jails (jail(8), jls(8)): which are running, and starting or stopping one by name.

The jail's root is mounted by the jail's own `mount` parameter, so starting it fails while the
encrypted image is locked; that is why starting is a separate, explicit step.
"""

from __future__ import annotations

import re
import shlex

from pyinfra import host
from pyinfra.api import FactBase, FactProcessError, OperationValueError, QuoteString, StringCommand, operation
from . import readings

_INTEGER = re.compile(r"^-?\d+$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_LIST_PARAMS = ("ip4.addr", "ip6.addr")


def _check_name(jail_name: str) -> str:
    if not _NAME.match(jail_name):
        raise OperationValueError(f"not a jail name: {jail_name!r}")
    return jail_name


def _parse_parameters(line: str) -> dict:
    params: dict = {}
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise FactProcessError(f"unreadable jls line {line!r}: {error}") from error
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            # booleans print as "name" (true) or "noname" (false), the "no" on the last component
            prefix, dot, last = key.rpartition(".")
            if last.startswith("no"):
                params[f"{prefix}{dot}{last[2:]}"] = False
            else:
                params[key] = True
        elif key in _LIST_PARAMS:
            params[key] = [address for address in value.split(",") if address]
        elif _INTEGER.match(value):
            params[key] = int(value)
        else:
            params[key] = value
    return params


class Jails(FactBase):
    """
    Returns the running jails by name, with all their parameters, from ``jls -nq``.

    .. code:: python

        {"tor": {"jid": 1, "name": "tor", "path": "/var/jails/tor", "ip4.addr": ["10.0.0.1"],
                 "securelevel": 3, "persist": False, ...}}

    ``-q`` quotes values holding spaces or quotes (plain ``-n`` does not, which is ambiguous).
    Booleans print as ``name`` / ``noname`` and become True / False; numbers become ints;
    ip4.addr and ip6.addr become lists.
    """

    def command(self) -> str:
        return "jls -nq"

    def requires_command(self) -> str:
        return "jls"

    @staticmethod
    def default() -> dict:
        return {}

    @staticmethod
    def reading_scopes():
        return [("jail",)]

    def process(self, output: list[str]) -> dict:
        jails = {}
        for line in output:
            if not line.strip():
                continue
            params = _parse_parameters(line)
            name = params.get("name", str(params.get("jid", "")))
            jails[str(name)] = params
        return jails


def while_stopped(jail_name: str, config: str, root: str, device: str, body: str) -> str:
    """A shell script that stops a running jail, mounts its root on the host (nosuid), runs `body` there, then
    unmounts it and starts the jail again whatever `body` did; it exits with body's status. Nothing in the jail can
    move a path while the host writes under its root."""
    jail, name, root = f"-f {shlex.quote(config)}", shlex.quote(jail_name), shlex.quote(root)
    return (f"jail {jail} -r {name} && mount -t ufs -o nosuid {shlex.quote(device)} {root} && "
            f"{{ status=0; {body} || status=$?; umount {root} && jail {jail} -c {name} && exit $status; }}")


def _jail_command(action: str, jail_name: str, config: str | None) -> StringCommand:
    args: list = ["jail"]
    if config is not None:
        args.extend(["-f", QuoteString(config)])
    args.extend([action, QuoteString(jail_name)])
    return StringCommand(*args)


def _touches(jail_name, running, config, root):
    """A jail's start or stop: the running jails, their mounts (its root, devfs), addresses, its services, its
    console log, and what its rc changes under its root; without the root known: everything."""
    if root is None:
        return None
    return readings.touches(("jail",), ("mount",), ("net",), ("service", jail_name), readings.path_scope(root),
                            readings.path_scope("/var/log"))


@readings.scoped(_touches)
@operation()
def jail(jail_name: str, running: bool = True, config: str | None = None, root: str | None = None):
    """
    Start (create) a jail defined in a configuration file, or stop (remove) it.

    + jail_name: jail name (not ``name``: pyinfra reserves ``name=`` for an operation's title)
    + running: ``False`` stops the jail, running its exec.stop and unmounting what it mounted
    + config: jail.conf(5) file defining it (``-f``), e.g. ``/etc/jail.conf.d/tor.conf``;
      without it jail(8) reads ``/etc/jail.conf``
    + root: the jail's root on the host (its ``path``), when known: the deploy's readings of the rest of the host
      then stay good across the start or stop

    **Example:**

    .. code:: python

        jail.jail("tor", config="/etc/jail.conf.d/tor.conf")
    """
    _check_name(jail_name)
    is_running = jail_name in readings.fact(Jails)
    if running == is_running:
        host.noop(f"jail {jail_name} is already {'running' if running else 'stopped'}")
        return
    yield _jail_command("-c" if running else "-r", jail_name, config)
