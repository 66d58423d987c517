"""The status of every relay of an inventory: one SSH connection per host through pyinfra's API, all hosts at
once (pyinfra's gevent pool), one row per jail (a host listing several jails, relays or onion services, gives
several), and a host that cannot be reached is a row of its own rather than an abort."""

from __future__ import annotations

from pyinfra.api import Config, State
from pyinfra.api.exceptions import ConnectError, PyinfraError
from pyinfra.context import ctx_host, ctx_state

from torjail import status


def _one(state, host, settings):
    """The rows of one host's jails (`settings`: the host's)."""
    with ctx_state.use(state), ctx_host.use(host):
        try:
            host.connect(show_errors=False, raise_exceptions=True)
        except ConnectError as error:
            return [status.unreachable(host.name, str(error.args[0]) if error.args else "cannot connect")]
        state.activate_host(host)
        try:
            return [_relay_row(host, jail) for jail in settings.jail_settings]
        except PyinfraError as error:
            return [status.unreachable(host.name, f"lost while asking: {error}")]
        finally:
            host.disconnect()


def _relay_row(host, relay):
    try:
        return status.collect(host, relay)
    except PyinfraError:
        raise
    except Exception as error:  # noqa: BLE001 (one relay's unreadable answer is its own row, not the end)
        return status.unreadable(relay.relay_name, f"{type(error).__name__}: {error}")


def survey(inventory, all_settings):
    """The status rows of every relay in the inventory, in inventory order (`all_settings`: each host's)."""
    state = State(check_for_changes=False)
    state.init(inventory, Config())
    hosts = list(inventory)
    greenlets = [state.pool.spawn(_one, state, host, all_settings[host.name]) for host in hosts]
    return [row for greenlet in greenlets for row in greenlet.get()]
