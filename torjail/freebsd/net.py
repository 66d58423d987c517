"""Network interfaces (ifconfig(8)) and the default route (route(8)).

pf needs the external interface by name; with `ext_if = "detect"` it is the interface of the default route.
The jail address lives on a cloned loopback (lo1), created now and at every boot through rc.conf.
"""

from __future__ import annotations

import re

from pyinfra import host
from pyinfra.api import FactBase, QuoteString, StringCommand, operation
from . import readings, shell

_HEADER = re.compile(r"^([A-Za-z0-9_.]+): flags=")


class DefaultRouteInterface(FactBase):
    """
    Returns the interface of the IPv4 default route (``route -n get default``), or None without one.
    """

    def command(self) -> str:
        return "route -n get -inet default 2>/dev/null || true"

    def requires_command(self) -> str:
        return "route"

    @staticmethod
    def default():
        return None

    def process(self, output: list[str]):
        for line in output:
            key, _, value = line.strip().partition(":")
            if key == "interface":
                return value.strip()
        return None

    @staticmethod
    def reading_scopes():
        return [("net",)]


class Interfaces(FactBase):
    """
    Returns every interface with its IPv4 and IPv6 addresses, from ``ifconfig``.

    .. code:: python

        {"lo1": {"up": True, "inet": ["10.0.0.1"], "inet6": []}}
    """

    def command(self) -> str:
        return "ifconfig"

    def requires_command(self) -> str:
        return "ifconfig"

    @staticmethod
    def default() -> dict:
        return {}

    def process(self, output: list[str]) -> dict:
        interfaces: dict = {}
        current = None
        for line in output:
            header = _HEADER.match(line)
            if header:
                current = interfaces.setdefault(header.group(1), {"up": "<UP" in line, "inet": [], "inet6": []})
                continue
            words = line.split()
            if current is not None and len(words) >= 2 and words[0] in ("inet", "inet6"):
                current[words[0]].append(words[1].split("%")[0])
        return interfaces

    @staticmethod
    def reading_scopes():
        return [("net",)]


@readings.scoped(lambda interface, addresses, prefix=32: readings.touches(("net",)))
@operation()
def cloned_addresses(interface: str, addresses: list[str], prefix: int = 32):
    """
    Create a cloned interface (such as lo1) now and give it an IPv4 alias for each address, unless they are
    already there: one operation for every jail address of a host, so the interface is created once.

    + interface: e.g. ``lo1``
    + addresses: IPv4 addresses for the aliases
    + prefix: prefix length of each alias

    The rc.conf side (``cloned_interfaces``, ``ifconfig_lo1_aliasN``) is set with ``rc.values``.

    **Example:**

    .. code:: python

        net.cloned_addresses("lo1", ["10.0.0.1", "10.0.0.2"])
    """
    yield from shell.joined(_cloned_address_commands(interface, addresses, prefix))


def _cloned_address_commands(interface, addresses, prefix):
    interfaces = readings.fact(Interfaces)
    held = interfaces[interface]["inet"] if interface in interfaces else []
    missing = [address for address in addresses if address not in held]
    if interface not in interfaces:
        yield StringCommand("ifconfig", QuoteString(interface), "create")
    elif not missing:
        host.noop(f"{interface} already carries {', '.join(addresses)}")
        return
    for address in missing:
        yield StringCommand("ifconfig", QuoteString(interface), "inet", QuoteString(f"{address}/{int(prefix)}"),
                            "alias")
