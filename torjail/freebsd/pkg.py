"""pkg(8) on the host and inside a jail root, the FreeBSD way.

pyinfra's `pkg.packages` uses a wrong URL prefix on FreeBSD, so torjail asks pkg itself. Packages for the jail
never go in with `pkg -c ROOT`: pkg would chroot into the jail root and run package scripts there as host root,
with the jail's own /bin/sh. Into a running jail they go with `pkg -j NAME` (pkg attaches to the jail, and its
scripts run inside it); into a jail that is not running (the first deploy, before the jail ever ran and before
pf's nat gives it a way out) with the host's pkg and `pkg -r ROOT`, whose scripts run with the host's shell and
PKG_ROOTDIR, never a binary of the jail.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import FactBase, QuoteString, StringCommand, operation
from . import readings


class PkgBootstrapped(FactBase):
    """
    Returns True when pkg itself is installed (``pkg -N`` succeeds), False on a fresh server.
    """

    def command(self) -> str:
        return "pkg -N >/dev/null 2>&1 && echo yes || echo no"

    @staticmethod
    def default():
        return False

    def process(self, output: list[str]):
        return output == ["yes"]

    @staticmethod
    def reading_scopes():
        # pkg -N: the real pkg under /usr/local/sbin and its database
        return [readings.path_scope("/usr/local/sbin/pkg"), readings.path_scope("/var/db/pkg")]


def _target(jail_name: str, root: str, running: bool) -> list:
    return ["-j", QuoteString(jail_name)] if running else ["-r", QuoteString(root)]


class JailPackages(FactBase):
    """
    Returns the packages installed in a jail (``pkg -j NAME query`` while it runs, else ``pkg -r ROOT query``):
    name -> version. An unpopulated or unmounted root has none.

    + jail_name, root, running: the jail, its root on the host, whether it runs
    """

    def command(self, jail_name: str, root: str, running: bool) -> str:
        return StringCommand(
            "test", "-d", QuoteString(f"{root}/var/db/pkg"), "&&", "pkg", *_target(jail_name, root, running),
            "query", "-a", QuoteString("%n %v"), "2>/dev/null", "||", "true",
        )

    @staticmethod
    def default() -> dict:
        return {}

    def process(self, output: list[str]) -> dict:
        return dict(line.split(" ", 1) for line in output if " " in line)

    @staticmethod
    def reading_scopes(jail_name: str, root: str, running: bool):
        # the jail's package database, asked inside the jail while it runs
        return [readings.path_scope(f"{root}/var/db/pkg"), ("jail",)]


def _bootstrap_touches():
    """pkg bootstrap installs pkg under /usr/local, its database and its cache."""
    return readings.touches(*[readings.path_scope(path) for path in ("/usr/local", "/var/db/pkg", "/var/cache/pkg")])


@readings.scoped(_bootstrap_touches)
@operation()
def bootstrapped():
    """
    Install pkg itself on a fresh server (``pkg bootstrap -y``).

    **Example:**

    .. code:: python

        pkg.bootstrapped()
    """
    if readings.fact(PkgBootstrapped):
        host.noop("pkg is already bootstrapped")
        return
    yield StringCommand("env", "ASSUME_ALWAYS_YES=yes", "pkg", "bootstrap", "-y")


@readings.scoped(lambda jail_name, root, running, package: readings.touches(readings.path_scope(root)))
@operation()
def installed_in_jail(jail_name: str, root: str, running: bool, package: str):
    """
    Install a package into a jail (``pkg -j NAME install -y`` while it runs, else ``pkg -r ROOT install -y``).

    + jail_name, root, running: the jail, its root on the host, whether it runs
    + package: package name, e.g. ``tor``

    **Example:**

    .. code:: python

        pkg.installed_in_jail("tor", "/var/jails/tor", False, "tor")
    """
    if package in readings.fact(JailPackages, jail_name=jail_name, root=root, running=running):
        host.noop(f"{package} is already installed in jail {jail_name}")
        return
    yield StringCommand("env", "ASSUME_ALWAYS_YES=yes", "pkg", *_target(jail_name, root, running), "install", "-y",
                        QuoteString(package))
