"""pkg(8) on the host and inside a jail root, the FreeBSD way.

pyinfra's `pkg.packages` uses a wrong URL prefix on FreeBSD, so torjail asks pkg itself. Packages for the jail go
in with `pkg -c ROOT` (pkg chroots into the jail root and uses the host's network), which works before the jail
ever ran and before pf's nat gives the jail a way out.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import FactBase, QuoteString, StringCommand, operation


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


class RootPackages(FactBase):
    """
    Returns the packages installed in a jail root (``pkg -c ROOT query``): name -> version.
    An unpopulated or unmounted root has none.

    + root: the jail root on the host
    """

    def command(self, root: str) -> str:
        quoted = QuoteString(root)
        return StringCommand(
            "test", "-d", QuoteString(f"{root}/var/db/pkg"), "&&", "pkg", "-c", quoted, "query", "-a",
            QuoteString("%n %v"), "2>/dev/null", "||", "true",
        )

    @staticmethod
    def default() -> dict:
        return {}

    def process(self, output: list[str]) -> dict:
        return dict(line.split(" ", 1) for line in output if " " in line)


@operation()
def bootstrapped():
    """
    Install pkg itself on a fresh server (``pkg bootstrap -y``).

    **Example:**

    .. code:: python

        pkg.bootstrapped()
    """
    if host.get_fact(PkgBootstrapped):
        host.noop("pkg is already bootstrapped")
        return
    yield StringCommand("env", "ASSUME_ALWAYS_YES=yes", "pkg", "bootstrap", "-y")


@operation()
def installed_in_root(package: str, root: str):
    """
    Install a package into a jail root from the host (``pkg -c ROOT install -y``).

    + package: package name, e.g. ``tor``
    + root: the jail root on the host

    **Example:**

    .. code:: python

        pkg.installed_in_root("tor", "/var/jails/tor")
    """
    if package in host.get_fact(RootPackages, root=root):
        host.noop(f"{package} is already installed in {root}")
        return
    yield StringCommand("env", "ASSUME_ALWAYS_YES=yes", "pkg", "-c", QuoteString(root), "install", "-y",
                        QuoteString(package))
