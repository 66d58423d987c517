"""Tor inside the jail: installed, running as its own user, listening on the jail address, configured exactly as
the template renders it, and with the accounting settings live (asked through tor's control socket).

Checks of a running tor are skipped when the jail or tor is not running: test_jail_running and
test_tor_running_as_its_own_user report those.
"""

import shlex

import pytest

from host_checks import (
    control_script,
    parse_control_replies,
    parse_ps,
    parse_sockstat,
    require_jail_root_mounted,
    require_jail_running,
    settings_for_run,
)
from torjail.render import ONION_DIR, jail_files
from torjail.settings import parse_tor_amount
from torjail.tasks.jail import CRONTAB_PATH, CRONTAB_SOURCE, NEWSYSLOG_PATH, NEWSYSLOG_SOURCE

TOR = "/usr/local/bin/tor"
TORRC = "/usr/local/etc/tor/torrc"
TOR_USER = "_tor"
TOR_TEMPLATES = ("torrc.j2", "torrc-onion.j2", "tor-exit-notice.html.j2")
CONTROL_QUERIES = ["GETINFO accounting/enabled accounting/hibernating",
                   "GETCONF AccountingMax AccountingRule AccountingStart"]


def listeners(settings):
    """(name, address, port) of every socket tor must listen on inside the jail (an onion service's: none)."""
    if settings.kind != "relay":
        return []
    wanted = [("ORPort", settings.jail_ip, settings.or_port)]
    if settings.dir_port:
        wanted.append(("DirPort", settings.jail_ip, settings.dir_port))
    if settings.ipv6:
        wanted.append(("ORPort-IPv6", settings.public_ipv6, settings.or_port))
    if settings.metrics_port:
        wanted.append(("MetricsPort", settings.jail_ip, settings.metrics_port))
    return wanted


def accounting_values(settings):
    """What tor's control socket must report: accounting on with the configured values, or off (an onion
    service's tor keeps none)."""
    if settings.kind != "relay" or not settings.accounting:
        return {"accounting/enabled": "0", "AccountingMax": "0"}
    traffic = settings.torrc_traffic
    return {"accounting/enabled": "1", "AccountingMax": str(parse_tor_amount(traffic["AccountingMax"])),
            "AccountingRule": traffic["AccountingRule"], "AccountingStart": traffic["AccountingStart"]}


def pytest_generate_tests(metafunc):
    settings = settings_for_run(metafunc.config)
    if "listener" in metafunc.fixturenames:
        items = listeners(settings) if settings else []
        metafunc.parametrize("listener", items, ids=[item[0] for item in items])
    if "accounting_key" in metafunc.fixturenames:
        metafunc.parametrize("accounting_key", list(accounting_values(settings)) if settings else [])
    if "tor_file" in metafunc.fixturenames:
        files = [] if settings is None else [
            path for path, _, template in jail_files(settings) if template in TOR_TEMPLATES]
        metafunc.parametrize("tor_file", files)


def jexec(settings, *command):
    return " ".join(shlex.quote(word) for word in ("jexec", settings.jail_name, *command))


def tor_users(host, settings):
    """Users of the tor processes in the jail, named as the jail's own passwd names them."""
    output = host.check_output(jexec(settings, "ps", "-ax", "-o", "user,comm"))
    return [user for user, command in parse_ps(output) if command == "tor"]


@pytest.fixture(scope="module")
def tor_running(host, settings):
    """Skip checks of a live tor when the jail or tor is not running (other checks report those)."""
    require_jail_running(host, settings)
    if not tor_users(host, settings):
        pytest.skip("tor is not running in the jail (test_tor_running_as_its_own_user fails)")


@pytest.fixture(scope="module")
def control(host, settings, tor_running):
    """tor's answers on its control socket, asked from inside the jail with its authentication cookie."""
    script = control_script(CONTROL_QUERIES)
    result = host.run(jexec(settings, "/bin/sh", "-c", script))
    return result, parse_control_replies(result.stdout)


def test_tor_package_installed(host, settings):
    """Without the tor package in the jail root there is no relay (and no security updates of it)."""
    require_jail_root_mounted(host, settings)
    result = host.run("pkg -c %s info -E tor", settings.jail_root)
    assert result.rc == 0, f"tor is not installed in {settings.jail_root}: {result.stdout}{result.stderr}"


def test_tor_running_as_its_own_user(host, settings):
    """tor running as root inside the jail would hand an attacker of tor the whole jail."""
    require_jail_running(host, settings)
    users = tor_users(host, settings)
    assert users, f"no tor process in jail {settings.jail_name}"
    assert set(users) == {TOR_USER}, f"tor processes run as {sorted(set(users))}"


def test_tor_listening(host, settings, tor_running, control, listener):
    """The relay ports are redirected to these addresses: a missing listener makes the relay unreachable."""
    name, address, port = listener
    sockets = parse_sockstat(host.check_output("sockstat -46 -l -j %s", settings.jail_name))
    found = [s for s in sockets if s["command"] == "tor" and s["address"] == address and s["port"] == str(port)]
    if not found:
        hibernating = control[1].values.get("accounting/hibernating")
        if hibernating in ("soft", "hard"):
            pytest.skip(f"tor is hibernating ({hibernating}): it closes its listeners until the next period")
    assert found, f"tor does not listen on {address}:{port} ({name}); listening: " \
                  f"{[s['local'] for s in sockets]}"


def test_tor_file_matches_rendered(host, settings, rendered, tor_file):
    """A torrc edited by hand is overwritten by the next deploy and may run a relay other than the one intended."""
    require_jail_root_mounted(host, settings)
    assert host.file(tor_file).content_string == rendered[tor_file]


def test_torrc_accepted_by_tor(host, settings):
    """A torrc tor refuses leaves the relay down at its next restart."""
    require_jail_running(host, settings)
    result = host.run(jexec(settings, TOR, "--verify-config", "-f", TORRC, "--User", "_tor"))
    assert result.rc == 0, f"tor --verify-config: {result.stdout}{result.stderr}"


def test_accounting_live(settings, control, accounting_key):
    """Accounting that is not live lets the relay run past the traffic the hosting contract pays for."""
    result, replies = control
    assert replies.authenticated, f"tor's control socket refused or was unreachable: {replies.errors} " \
                                  f"(exit {result.rc}: {result.stderr.strip()})"
    wanted = accounting_values(settings)[accounting_key]
    assert replies.values.get(accounting_key) == wanted, \
        f"tor reports {accounting_key}={replies.values.get(accounting_key)!r}, wanted {wanted!r} ({replies.errors})"


def test_tor_log_rotated_inside_the_jail(host, settings):
    """Without rotation tor's log grows until the encrypted image is full and the relay stops."""
    require_jail_root_mounted(host, settings)
    placed = host.file(settings.jail_root + NEWSYSLOG_PATH)
    assert placed.exists, f"{NEWSYSLOG_PATH} is missing in the jail"
    assert placed.content_string == NEWSYSLOG_SOURCE.read_text()


def test_the_jails_cron_runs_its_newsyslog(host, settings):
    """newsyslog rotates only when something runs it: the jail's cron, from the jail's crontab."""
    require_jail_running(host, settings)
    placed = host.file(settings.jail_root + CRONTAB_PATH)
    assert placed.exists and placed.content_string == CRONTAB_SOURCE.read_text(), \
        f"{CRONTAB_PATH} in the jail is not files/{CRONTAB_SOURCE.name}"
    result = host.run("service -j %s cron onestatus", settings.jail_name)
    assert result.rc == 0, f"cron does not run in jail {settings.jail_name}: {result.stdout}{result.stderr}"


def test_onion_service_keys_and_hostname_on_the_encrypted_root(host, settings):
    """An onion service's address is its key: tor keeps it in HiddenServiceDir on the jail's encrypted root,
    readable by tor alone; a relay has none."""
    if settings.kind != "onion-service":
        pytest.skip("a relay jail publishes no onion service")
    require_jail_root_mounted(host, settings)
    directory = host.file(settings.jail_root + ONION_DIR)
    assert directory.is_directory and directory.mode == 0o700, f"{ONION_DIR} is missing or not 0700"
    assert (directory.uid, directory.gid) == (256, 256), f"{ONION_DIR} is not _tor's"
    hostname = host.file(settings.jail_root + ONION_DIR + "/hostname")
    assert hostname.exists and hostname.content_string.strip().endswith(".onion"), \
        f"no onion address in {ONION_DIR}/hostname"
