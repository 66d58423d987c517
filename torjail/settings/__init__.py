"""One typed, validated settings object per host: the only reader of pyinfra's host data.

Everything downstream (tasks, templates, checks, tests) reads a `Settings`, never `host.data`, so a setting is
checked once, in one place, before anything reaches a server. Three small modules and a helper:

    model.py    the Settings model: every setting with its own check, then the checks across settings
    jails.py    a host's list of jails (relays, onion services): what an entry may say, the checks across jails
    loading.py  host data (inventory.py, group_data) -> Settings; pyinfra's own connection data left out
    errors.py   SettingsError: every problem as "HOST: setting 'NAME': expected ..."
    values.py   readings several settings share: sizes, tor amounts, interface names, paths, networks, ports

What other modules use is imported from here.
"""

from torjail.settings.errors import SettingsError
from torjail.settings.loading import (
    build_settings, host_settings, load_inventory, relays_for, settings_for, settings_for_inventory,
)
from torjail.settings.model import SETTING_NAMES, Settings
from torjail.settings.values import TOR_BYTE_UNITS, expect_interface_name, parse_size, parse_tor_amount

__all__ = [
    "SETTING_NAMES", "Settings", "SettingsError", "TOR_BYTE_UNITS", "build_settings", "expect_interface_name",
    "host_settings", "load_inventory", "parse_size", "parse_tor_amount", "relays_for", "settings_for",
    "settings_for_inventory",
]
