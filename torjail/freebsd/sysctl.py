"""Kernel state (sysctl(8)): values now, and in /etc/sysctl.conf for the next boot.

pyinfra's `server.sysctl(persist=True)` writes `key = value` with spaces; we keep FreeBSD's own
`key=value` form, one line per key. Tor relays want some limits raised but never lowered: a server
that already allows more keeps it (`raise_only`).
"""

from __future__ import annotations

import re

from pyinfra import host, logger
from pyinfra.api import FactBase, OperationValueError, QuoteString, StringCommand, operation
from pyinfra.api.command import make_formatted_string_command
from pyinfra.facts.files import FindInFile
from pyinfra.operations.util.files import generate_color_diff, sed_replace

from . import readings, shell

SYSCTL_CONF = "/etc/sysctl.conf"
_KEY = re.compile(r"^[A-Za-z0-9_%.-]+$")


class Sysctls(FactBase):
    """
    Returns the current values of some sysctls, read with one ``sysctl -i -e`` command.

    + names: sysctl names, e.g. ``["kern.ipc.somaxconn", "net.inet.ip.random_id"]``

    .. code:: python

        {"kern.ipc.somaxconn": "4096", "net.inet.ip.random_id": "1"}

    Values stay strings. ``-i`` leaves out names this kernel does not know (they are missing from
    the result) instead of failing the whole read.

    Ours rather than pyinfra's ``server.Sysctl``: that one turns numbers into ints and values with spaces into
    lists, while sysctl.conf and ``sysctl name=value`` hold strings that we compare as they are written; and
    it hides every error behind ``2>/dev/null || true``, so a sysctl that cannot run reads as "nothing set".
    """

    def command(self, names: list[str]) -> StringCommand:
        return StringCommand("sysctl", "-i", "-e", *[QuoteString(name) for name in names])

    def requires_command(self, names: list[str]) -> str:
        return "sysctl"

    @staticmethod
    def reading_scopes(names: list[str]):
        return [("sysctl", name) for name in names]

    @staticmethod
    def default() -> dict:
        return {}

    def process(self, output: list[str]) -> dict:
        values = {}
        for line in output:
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip()
        return values


def _is_integer(text: str | None) -> bool:
    return text is not None and re.match(r"^-?\d+$", text.strip()) is not None


def line_pattern(key: str) -> str:
    # a basic regular expression (grep and sed) matching this key's line in sysctl.conf
    return "^" + re.sub(r"([.\[\]*^$\\])", r"\\\1", key) + "[[:space:]]*=.*$"


def current_values(names: list[str]) -> dict:
    """Sysctls for this host for one set of names, read again only once the server changed (one `sysctl`
    serves every key in the set)."""
    return readings.fact(Sysctls, names=list(names))


def _persisted_line(key: str) -> dict:
    """The arguments of the FindInFile question for this key's line in sysctl.conf."""
    return {"path": SYSCTL_CONF, "pattern": line_pattern(key)}


def _touched(keys):
    """`sysctl key=value` and the keys' lines in sysctl.conf; the operations update both readings as they plan."""
    keys = sorted(keys)
    return readings.touches(*[("sysctl", key) for key in keys], readings.path_scope(SYSCTL_CONF),
                            vouched=[(Sysctls, {"names": keys}), *[(FindInFile, _persisted_line(key))
                                                                   for key in keys]])


def _values_touch(values, raise_only, persist):
    return _touched(list(values or {}))


def _value_touch(key, value, raise_only, persist):
    return _touched([key])


@readings.scoped(_values_touch)
@operation()
def values(values: dict | None = None, raise_only: tuple = (), persist: bool = True):
    """
    Set several sysctls now and (by default) in /etc/sysctl.conf, in one remote command.

    + values: sysctl name -> wanted value
    + raise_only: the names among them that are numeric limits: never lowered when already higher, now or at the
      next boot (/etc/sysctl.conf then keeps the higher of the current and the wanted value)
    + persist: keep a ``key=value`` line (no spaces, one per key) in /etc/sysctl.conf

    One ``sysctl -i -e`` reads them all and one ``sysctl`` sets every value that differs; each line of sysctl.conf
    that differs is then replaced (or appended) in the same command.

    **Example:**

    .. code:: python

        sysctl.values({"net.inet.ip.random_id": 1, "kern.ipc.somaxconn": 4096},
                      raise_only=("kern.ipc.somaxconn",))
    """
    values = dict(values or {})
    for key in raise_only:
        if key not in values:
            raise OperationValueError(f"raise_only names {key!r}, which is not among the values")
    yield from shell.joined(_commands(values, set(raise_only), persist))


@readings.scoped(_value_touch)
@operation()
def value(key: str, value: str | int, raise_only: bool = False, persist: bool = True):
    """
    Set a sysctl now and (by default) in /etc/sysctl.conf: ``values`` with one key.

    **Example:**

    .. code:: python

        sysctl.value("net.inet.ip.random_id", 1)
        sysctl.value("kern.ipc.somaxconn", 4096, raise_only=True)
    """
    yield from shell.joined(_commands({key: value}, {key} if raise_only else set(), persist))


def _commands(values: dict, raise_only: set, persist: bool):
    wanted = {key: str(value) for key, value in values.items()}
    for key, text in wanted.items():
        if not _KEY.match(key):
            raise OperationValueError(f"not a sysctl name: {key!r}")
        if key in raise_only and not _is_integer(text):
            raise OperationValueError(f"{key}: raise_only needs a number, not {text!r}")

    current_now = current_values(sorted(wanted))
    changed = {}
    for key, text in wanted.items():
        current = current_now.get(key)
        if key in raise_only and _is_integer(current) and int(current) >= int(text):
            host.noop(f"{key} is already {current} (at least {text})")
            # what the next boot gets must not be lower than what the server has now either
            wanted[key] = str(int(current))
        elif current == text:
            host.noop(f"{key} is already {text}")
        else:
            changed[key] = text
    if changed:
        current_now.update(changed)
        yield StringCommand("sysctl", *[QuoteString(f"{key}={text}") for key, text in changed.items()])

    if persist:
        for key, text in wanted.items():
            yield from _persisted(key, text, key in raise_only)


def _persisted(key: str, wanted: str, raise_only: bool):
    """The command that makes sysctl.conf set `key=wanted` (at least `wanted` when raise_only), if any."""
    pattern = line_pattern(key)
    lines = readings.fact(FindInFile, **_persisted_line(key))
    if lines is None:
        lines = []
    line = f"{key}={wanted}"
    if raise_only:
        persisted = [found.partition("=")[2].split("#")[0].strip() for found in lines]
        if any(_is_integer(text) and int(text) >= int(wanted) for text in persisted):
            host.noop(f"{SYSCTL_CONF} already sets {key} to at least {wanted}")
            return
    elif lines == [line]:
        host.noop(f"{SYSCTL_CONF} already sets {line}")
        return
    if lines:
        # as pyinfra's files.line replaces them: every line of this key becomes key=value
        if host.state.config.DIFF:
            host.log(f"Will replace lines in {SYSCTL_CONF}", logger.info)
            for shown in generate_color_diff(list(lines), [line] * len(lines)):
                logger.info("  %s", shown)
        command = sed_replace(SYSCTL_CONF, pattern, line)
    else:
        command = make_formatted_string_command("echo {0} >> {1}", QuoteString(line), QuoteString(SYSCTL_CONF))
    lines[:] = [line] * max(len(lines), 1)
    yield command
