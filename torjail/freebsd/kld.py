"""Kernel modules (kldload(8), kldstat(8)): loaded now, and loaded at boot from /boot/loader.conf.

pyinfra's `server.modprobe` runs Linux's modprobe; FreeBSD loads kernel modules with kldload and
loads them at boot from `NAME_load="YES"` lines in /boot/loader.conf.
"""

from __future__ import annotations

import re

from pyinfra import host
from pyinfra.api import FactBase, OperationValueError, QuoteString, StringCommand, operation
from . import rc
from . import readings

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


def _touches(module, loaded, at_boot):
    """A module brings its sysctls and interfaces (pf, pflog0) with it; module() updates the readings of the
    loaded modules and of loader.conf as it plans."""
    return readings.touches(("kld",), ("sysctl",), ("net",), readings.path_scope(LOADER_CONF),
                            vouched=[(KernelModules, {}), (rc.RcConf, {"path": LOADER_CONF, "jail": None})])


@readings.scoped(_touches)
@operation()
def module(module: str, loaded: bool = True, at_boot: bool = True):
    """
    Load (or unload) a kernel module now, and have the loader load it (or not) at boot.

    + module: module file name without ``.ko``, e.g. ``geom_eli``, ``pf``
    + loaded: ``True`` runs ``kldload -n`` when it is not loaded, ``False`` runs ``kldunload``
    + at_boot: ``True`` sets ``MODULE_load="YES"`` in /boot/loader.conf, ``False`` removes it

    **Example:**

    .. code:: python

        kld.module("geom_eli")
        kld.module("pf", at_boot=True)
    """
    if not _MODULE.match(module):
        raise OperationValueError(f"not a kernel module name: {module!r}")

    modules = loaded_modules()
    is_loaded = module in modules
    if loaded and not is_loaded:
        yield StringCommand("kldload", "-n", QuoteString(module))
        modules.add(module)
    elif not loaded and is_loaded:
        yield StringCommand("kldunload", QuoteString(module))
        modules.discard(module)
    else:
        host.noop(f"{module} is already {'loaded' if loaded else 'unloaded'}")

    if at_boot:
        yield from rc.value._inner(f"{module}_load", "YES", path=LOADER_CONF)
    else:
        yield from rc.value._inner(f"{module}_load", path=LOADER_CONF, present=False)
