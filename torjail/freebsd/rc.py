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

from . import readings, shell

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


def _file_touched(path: str, jail: str | None, **_):
    """sysrc changes the one file, and the operations update its reading as they plan; a jail's file: everything."""
    if jail is not None:
        return None
    return readings.touches(readings.path_scope(path), vouched=[(RcConf, {"path": path, "jail": jail})])


@readings.scoped(_file_touched)
@operation()
def values(
    assignments: dict | None = None,
    path: str = "/etc/rc.conf",
    jail: str | None = None,
    unset: tuple = (),
):
    """
    Set several variables of one rc.conf-style file, and remove others, in one remote command.

    + assignments: variable name -> wanted value (numbers are turned into strings)
    + path: the file (``sysrc -f``)
    + jail: change the file inside this jail (``sysrc -j``)
    + unset: variables to remove (``sysrc -x``)

    Only the variables whose value differs are set, with one ``sysrc`` naming them all (it takes any number of
    ``name=value`` operands); the dry run lists each of them. The file is read once per run (``RcConf``) and its
    reading updated as planned, so the next operation on the same file needs no new reading; each variable should
    be set by one operation.

    **Example:**

    .. code:: python

        rc.values({"ntpd_enable": "YES", "ntpd_sync_on_start": "YES"})
        rc.values({"pf_load": "YES"}, path="/boot/loader.conf")
    """
    yield from shell.joined(_commands(dict(assignments or {}), path, jail, tuple(unset)))


@readings.scoped(_file_touched)
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

    As ``values`` with one variable. (The first argument is not called ``name``: pyinfra reserves ``name=`` for
    an operation's title.)

    **Example:**

    .. code:: python

        rc.value("pf_enable", "YES")
        rc.value("geom_eli_load", "YES", path="/boot/loader.conf")
        rc.value("tor_enable", "YES", jail="tor")
    """
    if present:
        yield from _commands({variable: value}, path, jail, ())
    else:
        yield from _commands({}, path, jail, (variable,))


def _commands(assignments: dict, path: str, jail: str | None, unset: tuple):
    """One sysrc setting what differs and one removing what is there, the file's reading updated with both."""
    wanted = {variable: str(text) for variable, text in assignments.items()}
    for variable in [*wanted, *unset]:
        _check(variable, wanted.get(variable, ""))
    values = current_values(path, jail)

    args: list = ["sysrc"]
    if jail is not None:
        args.extend(["-j", QuoteString(jail)])
    args.extend(["-f", QuoteString(path)])

    changed = {variable: text for variable, text in wanted.items() if values.get(variable) != text}
    removed = [variable for variable in unset if variable in values]
    for variable, text in wanted.items():
        if variable not in changed:
            host.noop(f"{variable} is already {text!r} in {path}")
    for variable in unset:
        if variable not in removed:
            host.noop(f"{variable} is already unset in {path}")
    if changed:
        values.update(changed)
        yield StringCommand(*args, *[QuoteString(f"{variable}={text}") for variable, text in changed.items()])
    if removed:
        for variable in removed:
            del values[variable]
        yield StringCommand(*args, "-x", *[QuoteString(variable) for variable in removed])
