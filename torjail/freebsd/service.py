"""rc(8) services on the host and in a jail, through service(8).

pyinfra's `server.service` and `bsdinit.service` write rc.conf.local and start before enabling; torjail enables
with `rc.value` and starts here, asking `service NAME onestatus` (exit 0 when running) first.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import FactBase, QuoteString, StringCommand, operation
from . import readings


def _service(jail, *args):
    prefix = ["service"] + (["-j", QuoteString(jail)] if jail else [])
    return StringCommand(*prefix, *args)


class ServiceRunning(FactBase):
    """
    Returns True when ``service NAME onestatus`` says the service runs (on the host or in a running jail).

    + service: rc script name, e.g. ``pflog`` or ``tor``
    + jail: ask inside this jail
    """

    def command(self, service: str, jail: str | None = None):
        return StringCommand(_service(jail, QuoteString(service), "onestatus"), ">/dev/null", "2>&1", "&&",
                             "echo", "running", "||", "echo", "stopped")

    @staticmethod
    def default():
        return False

    def process(self, output: list[str]):
        return output == ["running"]

    @staticmethod
    def reading_scopes(service: str, jail: str | None = None):
        return [("service", jail, service)]


def _touches(service, running, jail):
    """A host service's start or stop: its own state, and what rc scripts may bring along (pflog's loads its module
    and brings pflog0 up), pid files and logs. A jail's service writes inside the jail root, a path not known here:
    everything."""
    if jail is not None:
        return None
    return readings.touches(("service", None, service), ("kld",), ("net",), readings.path_scope("/var/run"),
                            readings.path_scope("/var/log"))


@readings.scoped(_touches)
@operation()
def service(service: str, running: bool = True, jail: str | None = None):
    """
    Start a service unless it already runs, or stop it if it runs (its ``NAME_enable`` is set separately
    with ``rc.value``).

    + service: rc script name
    + running: ``False`` stops the service (``onestop``, whatever its ``NAME_enable`` says)
    + jail: the jail the service lives in

    **Example:**

    .. code:: python

        service.service("pflog")
    """
    is_running = readings.fact(ServiceRunning, service=service, jail=jail)
    where = f" in jail {jail}" if jail else ""
    if running and is_running:
        host.noop(f"{service} is already running{where}")
        return
    if not running and not is_running:
        host.noop(f"{service} is not running{where}")
        return
    yield _service(jail, QuoteString(service), "start" if running else "onestop")


@operation(is_idempotent=False)
def reloaded(service: str, jail: str | None = None, owed: str | None = None):
    """
    Reload a running service (use with ``_if=`` on the operation that changed its configuration).

    + service: rc script name
    + jail: the jail the service lives in
    + owed: a marker file that says a reload is owed (see ``files.checked``): removed once the reload worked

    **Example:**

    .. code:: python

        service.reloaded("tor", jail="tor", _if=torrc.did_change)
    """
    if owed:
        yield StringCommand(_service(jail, QuoteString(service), "reload"), "&&", "rm", "-f", QuoteString(owed))
        return
    yield _service(jail, QuoteString(service), "reload")
