"""From pyinfra's host data (inventory.py and group_data) to Settings: the only reader of host.data.

The deploy files, `python -m torjail` and the tests all load settings here, so they agree on what a host's
settings are; the host data pyinfra itself uses (connection settings) is left out.
"""

import os

from pydantic import ValidationError

from torjail.settings.errors import SettingsError, problems_from
from torjail.settings.model import Settings

# Host data keys that belong to pyinfra itself (connection settings), not to torjail.
PYINFRA_DATA_PREFIXES = ("ssh_", "_")


def build_settings(host_name, data):
    """Validate one host's data (a dict) into Settings, or raise SettingsError naming host and settings."""
    values = {key: value for key, value in data.items() if not key.startswith(PYINFRA_DATA_PREFIXES)}
    try:
        return Settings(host_name=host_name, **values)
    except ValidationError as error:
        raise SettingsError(problems_from(host_name, error)) from None


def host_settings(host_name, data):
    """A host's Settings: its jails in `.jail_settings`, its relays in `.relays` (the host itself when it lists
    no jails), its onion services in `.onion_services`."""
    return build_settings(host_name, data)


def settings_for(host):
    """Settings of a pyinfra host (its relays in `.relays`), validated once per host and cached on it."""
    cached = host.data.get("_torjail_settings")
    if cached is None:
        cached = host_settings(host.name, host.data.dict())
        host.data._torjail_settings = cached
    return cached


def relays_for(host):
    """The Settings of each relay jail of a pyinfra host, in the order its `jails` lists them."""
    return settings_for(host).relays


def settings_for_inventory(inventory, build=host_settings):
    """Settings of every host of a pyinfra inventory (each relay in `.relays`; `build_settings` takes an
    onion-service jail too); all problems of all hosts are reported together."""
    result, problems = {}, []
    for host in inventory:
        try:
            result[host.name] = build(host.name, host.data.dict())
        except SettingsError as error:
            problems += error.problems
    if problems:
        raise SettingsError(problems)
    return result


def load_inventory(path):
    """Load an inventory file (and the group_data beside it and in the current directory) as pyinfra's CLI does."""
    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    state = State(check_for_changes=False)
    state.cwd = os.getcwd()
    with ctx_state.use(state):
        return make_inventory(str(path), cwd=state.cwd)
