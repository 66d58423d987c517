"""rc.conf(5) and loader.conf(5) variables: compare with the file, then set with sysrc(8).

pyinfra's own `sysrc` operation does nothing when a variable already has a value (so it never
corrects a wrong one) unless `overwrite=True`, which then reports a change on every run. `value`
compares first and only runs sysrc when the file says something else.
"""

from __future__ import annotations

import re
import shlex

from pyinfra import host
from pyinfra.api import FactBase, OperationValueError, QuoteString, StringCommand, operation

from . import readings

_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)=(.*)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
# A value in quotes may run over a few lines; more than this is not an assignment we understand.
_MAX_CONTINUATION_LINES = 50


def parse_assignments(lines: list[str]) -> dict[str, str]:
    """Return NAME -> value for the `NAME=value` lines of a shell-style config; the last one wins."""
    values: dict[str, str] = {}
    index = 0
    while index < len(lines):
        match = _ASSIGNMENT.match(lines[index])
        index += 1
        if not match:
            continue
        name, text = match.groups()
        for _ in range(_MAX_CONTINUATION_LINES):
            try:
                words = shlex.split(text, comments=True)
            except ValueError:
                # an unclosed quote: the value continues on the next line
                if index >= len(lines):
                    words = None
                    break
                text = f"{text}\n{lines[index]}"
                index += 1
                continue
            break
        else:
            words = None
        if words is None:
            continue
        values[name] = " ".join(words) if len(words) != 1 else words[0]
    return values


class RcConf(FactBase):
    """
    Returns every variable assigned in an rc.conf-style file (rc.conf, loader.conf).

    + path: the file, e.g. ``/etc/rc.conf`` or ``/boot/loader.conf``
    + jail: read the file inside this jail (through jexec), as ``sysrc -j`` does

    .. code:: python

        {"pf_enable": "YES", "dumpdev": "NO", "cloned_interfaces": "lo1"}

    The file is read as text (``cat``) and its ``NAME=value`` lines parsed here, quotes and comments
    as sh reads them, the last assignment winning. ``sysrc -a`` is not used: it lists only
    variables whose value differs from /etc/defaults/rc.conf, so a variable set to its default
    would look unset; and sourcing the file with sh fails on loader.conf's dotted names
    (``kern.geom.label.disk_ident.enable``). A missing file has no variables: ``{}``.
    """

    def command(self, path: str = "/etc/rc.conf", jail: str | None = None) -> StringCommand:
        read = StringCommand("[ ! -f", QuoteString(path), "] || cat", QuoteString(path))
        if jail is None:
            return read
        return StringCommand("jexec", QuoteString(jail), "sh -c", QuoteString(str(read)))

    @staticmethod
    def default() -> dict:
        return {}

    def process(self, output: list[str]) -> dict:
        return parse_assignments(output)

    @staticmethod
    def reading_scopes(path: str = "/etc/rc.conf", jail: str | None = None):
        # a jail's file is read inside the jail: its path on the host is not known here
        return None if jail is not None else [readings.path_scope(path)]


def current_values(path: str, jail: str | None) -> dict:
    """RcConf for this host and file, read again only once the server changed."""
    return readings.fact(RcConf, path=path, jail=jail)


def _check(variable: str, wanted: str) -> None:
    if not _NAME.match(variable):
        raise OperationValueError(f"not an rc.conf variable name: {variable!r}")
    if "\n" in wanted:
        raise OperationValueError(f"{variable}: a value must be one line")


def _touches(variable, value, path, jail, present):
    """sysrc changes the one file, and value() updates its reading as it plans; a jail's file: everything."""
    if jail is not None:
        return None
    return readings.touches(readings.path_scope(path), vouched=[(RcConf, {"path": path, "jail": jail})])


@readings.scoped(_touches)
@operation()
def value(
    variable: str,
    value: str | int = "",
    path: str = "/etc/rc.conf",
    jail: str | None = None,
    present: bool = True,
):
    """
    Set (or remove) one variable in rc.conf, loader.conf or another rc.conf-style file.

    + variable: variable name, e.g. ``pf_enable`` or ``geom_eli_load``
    + value: wanted value (a string; numbers are turned into strings)
    + path: the file (``sysrc -f``)
    + jail: change the file inside this jail (``sysrc -j``)
    + present: ``False`` removes the variable (``sysrc -x``)

    The file is read once per run (``RcConf``) and its reading updated with the value set, so that the next
    value set in the same file needs no new reading; each variable should be set by one operation.
    (The first argument is not called ``name``: pyinfra reserves ``name=`` for an operation's title.)

    **Example:**

    .. code:: python

        rc.value("pf_enable", "YES")
        rc.value("geom_eli_load", "YES", path="/boot/loader.conf")
        rc.value("tor_enable", "YES", jail="tor")
    """
    wanted = str(value)
    _check(variable, wanted)
    values = current_values(path, jail)
    current = values.get(variable)

    args: list = ["sysrc"]
    if jail is not None:
        args.extend(["-j", QuoteString(jail)])
    args.extend(["-f", QuoteString(path)])

    if present:
        if current == wanted:
            host.noop(f"{variable} is already {wanted!r} in {path}")
            return
        values[variable] = wanted
        yield StringCommand(*args, QuoteString(f"{variable}={wanted}"))
    else:
        if current is None:
            host.noop(f"{variable} is already unset in {path}")
            return
        del values[variable]
        yield StringCommand(*args, "-x", QuoteString(variable))
