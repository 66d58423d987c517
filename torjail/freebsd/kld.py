"""Kernel modules (kldload(8), kldstat(8)): loaded now, and loaded at boot from /boot/loader.conf.

pyinfra's `server.modprobe` runs Linux's modprobe; FreeBSD loads kernel modules with kldload and
loads them at boot from `NAME_load="YES"` lines in /boot/loader.conf.
"""

from __future__ import annotations

import re

from pyinfra import host
from pyinfra.api import FactBase, OperationValueError, QuoteString, StringCommand, operation
from . import rc, readings, shell

LOADER_CONF = "/boot/loader.conf"
_MODULE = re.compile(r"^[A-Za-z0-9_]+$")


class KernelModules(FactBase):
    """
    Returns the loaded kernel files without ``.ko``, from ``kldstat``.

    .. code:: python

        {"kernel", "geom_eli", "pf", "pflog"}

    Ours rather than pyinfra's ``server.KernelModules``: that one asks ``server.Kernel`` (``uname``) first, one
    more remote command each time it is read (pyinfra 3 keeps no facts between reads), and keys its result by
    kldstat's file name (``geom_eli.ko``), while ``kldload -n`` and loader.conf's ``*_load`` speak of ``geom_eli``.
    """

    def command(self) -> str:
        return "kldstat"

    def requires_command(self) -> str:
        return "kldstat"

    @staticmethod
    def default() -> set:
        return set()

    @staticmethod
    def reading_scopes():
        return [("kld",)]

    def process(self, output: list[str]) -> set:
        modules = set()
        for line in output:
            fields = line.split()
            # header: "Id Refs Address Size Name"; rows: "3 1 0xffffffff82a1c000 5a8b8 geom_eli.ko"
            if len(fields) < 5 or not fields[0].isdigit():
                continue
            file_name = fields[4]
            modules.add(file_name[: -len(".ko")] if file_name.endswith(".ko") else file_name)
        return modules


def loaded_modules() -> set:
    """KernelModules for this host, read again only once the server changed (one kldstat serves every
    module); `module` keeps it up to date with what it loads or unloads."""
    return readings.fact(KernelModules)


def _touched(**_):
    """A module brings its sysctls, interfaces (pflog0) and devices (/dev/pf: pf's state reads otherwise) with it;
    the operations update the readings of the loaded modules and of loader.conf as they plan."""
    return readings.touches(("kld",), ("sysctl",), ("net",), ("pf",), readings.path_scope(LOADER_CONF),
                            vouched=[(KernelModules, {}), (rc.RcConf, {"path": LOADER_CONF, "jail": None})])


@readings.scoped(_touched)
@operation()
def modules(modules: tuple = (), loaded: bool = True, at_boot: bool = True):
    """
    Load (or unload) kernel modules now, and have the loader load them (or not) at boot, in one remote command.

    + modules: module file names without ``.ko``, e.g. ``("geom_eli", "pf", "pflog")``
    + loaded: ``True`` runs ``kldload -n`` for those not loaded, ``False`` runs ``kldunload`` for those loaded
    + at_boot: ``True`` sets ``MODULE_load="YES"`` in /boot/loader.conf, ``False`` removes it

    One ``kldload -n`` names every module still to load (it loads them in the order given, and stops at the first
    that fails), and one ``sysrc`` sets what loader.conf lacks.

    **Example:**

    .. code:: python

        kld.modules(("geom_eli", "pf", "pflog"))
    """
    yield from shell.joined(_commands(tuple(modules), loaded, at_boot))


@readings.scoped(_touched)
@operation()
def module(module: str, loaded: bool = True, at_boot: bool = True):
    """
    Load (or unload) a kernel module now, and have the loader load it (or not) at boot: ``modules`` with one.

    **Example:**

    .. code:: python

        kld.module("geom_eli")
        kld.module("pf", at_boot=False)
    """
    yield from shell.joined(_commands((module,), loaded, at_boot))


def _commands(names: tuple, loaded: bool, at_boot: bool):
    for name in names:
        if not _MODULE.match(name):
            raise OperationValueError(f"not a kernel module name: {name!r}")

    present = loaded_modules()
    if loaded:
        missing = [name for name in names if name not in present]
        if missing:
            yield StringCommand("kldload", "-n", *[QuoteString(name) for name in missing])
            present.update(missing)
    else:
        missing = [name for name in names if name in present]
        if missing:
            yield StringCommand("kldunload", *[QuoteString(name) for name in missing])
            present.difference_update(missing)
    for name in names:
        if name not in missing:
            host.noop(f"{name} is already {'loaded' if loaded else 'unloaded'}")

    boot = [f"{name}_load" for name in names]
    if at_boot:
        yield from rc.values._inner({variable: "YES" for variable in boot}, path=LOADER_CONF)
    else:
        yield from rc.values._inner(path=LOADER_CONF, unset=tuple(boot))
