"""Host checks: prove that a running FreeBSD server is what its torjail settings say (testinfra, over SSH).

    pytest tests/host --hosts=ssh://relay1.example.org --ssh-config=ssh_config --inventory=inventory.py

The server is the one --hosts names (one per run); its settings come from the inventory through the deploy's own
loader (`--inventory-host NAME` when the inventory calls it differently). Checks needing the operator's view of the
network are marked `outside` and run only with --outside (or TORJAIL_VERIFY_OUTSIDE=1). Without --hosts every
check here is skipped, so `pytest tests` stays a host-free run.
"""

from pathlib import Path

import pytest

import host_checks
from torjail.family import torrc_lines
from torjail.freebsd.net import DefaultRouteInterface
from torjail.render import render_all

HERE = Path(__file__).resolve().parent


def pytest_addoption(parser):
    group = parser.getgroup("torjail host checks")
    group.addoption("--inventory", default=host_checks.DEFAULT_INVENTORY,
                    help="pyinfra inventory holding the server's settings (default: inventory.py)")
    group.addoption("--inventory-host", default=None,
                    help="the server's name in the inventory, when --hosts reaches it under another name")
    group.addoption("--jail", default=None,
                    help="the jail to check (a relay or an onion service), when the server runs several")
    group.addoption("--outside", action="store_true", default=False,
                    help="also run the checks made from this machine against the server's public address")


def pytest_configure(config):
    config.addinivalue_line("markers", "outside: checks from the operator's machine against the public address")


def pytest_collection_modifyitems(config, items):
    without_host = not host_checks.host_specs(config)
    outside = host_checks.outside_allowed(config)
    for item in items:
        if not Path(item.path).resolve().is_relative_to(HERE):
            continue
        if without_host:
            item.add_marker(pytest.mark.skip(reason="host checks need a server: --hosts=ssh://HOST"))
        elif item.get_closest_marker("outside") and not outside:
            item.add_marker(pytest.mark.skip(
                reason=f"outside view: run with --outside or {host_checks.OUTSIDE_ENV}=1 where the network allows"))


@pytest.fixture(scope="session")
def settings(request):
    """The validated Settings of the server under test (the deploy's own loader)."""
    return host_checks.settings_for_run(request.config)


@pytest.fixture(scope="session")
def server_settings(request):
    """The validated Settings of the whole server (every relay jail's), for what the host holds once."""
    return host_checks.server_for_run(request.config)


@pytest.fixture(scope="module")
def ext_if(host, server_settings):
    """The external interface: the setting, or the interface of the server's IPv4 default route."""
    if server_settings.ext_if != "detect":
        return server_settings.ext_if
    route = host.run("route -n get -inet default")
    found = DefaultRouteInterface().process(route.stdout.splitlines())
    assert found, f"ext_if is 'detect' but `route -n get -inet default` names no interface: {route.stderr}"
    return found


@pytest.fixture(scope="module")
def rendered(request, server_settings, ext_if):
    """Every file the deploy generates for this server, every relay's (a family's torrc from this machine's
    records, as the deploy renders it): server path -> content."""
    fleet = host_checks.fleet_for_run(request.config)
    return {generated.path: generated.content for generated in
            render_all(server_settings.with_ext_if(ext_if), family=lambda relay: torrc_lines(relay, fleet))}


def sysrc_value(host, variable, path=None):
    """A variable's effective value from rc.conf (defaults included) or another file; None when unset."""
    result = host.run("sysrc -f %s -n %s", path, variable) if path else host.run("sysrc -n %s", variable)
    return result.stdout.strip() if result.rc == 0 else None


@pytest.fixture(scope="module")
def sysrc(host):
    """sysrc(variable, path=None) -> the variable's value as rc(8) or the loader would read it, or None."""
    return lambda variable, path=None: sysrc_value(host, variable, path)
