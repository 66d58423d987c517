"""The jail: running with the parameters of its generated jail.conf, its address, and kept out of the boot list.

Parameter values are read from the jail.conf the templates render for this server, so the checks follow the
templates; jls(8) prints them the same way (quotes removed).
"""

import pytest

from host_checks import (
    parse_jail_conf_parameters,
    require_jail_root_mounted,
    require_jail_running,
    settings_for_run,
)
from torjail.freebsd.jail import Jails
from torjail.freebsd.mount import MountPoints
from torjail.render import jail_files

# Parameters whose running value must equal the generated jail.conf's.
JAIL_PARAMETERS = ("path", "host.hostname", "securelevel", "enforce_statfs", "devfs_ruleset", "children.max")
# Generated files of this concern (see torjail.render.jail_files).
JAIL_TEMPLATES = ("jail.conf.j2", "jail-rc.conf.j2", "pkg-repo.conf.j2", "local-unbound.conf.j2",
                  "jail-resolv.conf.j2")


def pytest_generate_tests(metafunc):
    if "jail_file" in metafunc.fixturenames:
        settings = settings_for_run(metafunc.config)
        files = [] if settings is None else [
            path for path, _, template in jail_files(settings) if template in JAIL_TEMPLATES]
        metafunc.parametrize("jail_file", files)


@pytest.fixture(scope="module")
def running(host, settings):
    """The jail's parameters as jls(8) prints them (checks of a jail that is not running are skipped)."""
    require_jail_running(host, settings)
    return Jails().process(host.check_output("jls -nq").splitlines())[settings.jail_name]


@pytest.fixture(scope="module")
def jail_conf(rendered, settings):
    return rendered[settings.jail_conf_path]


def test_jail_running(host, settings):
    """A relay whose jail is not running is down (for instance after a reboot that was never followed by unlock)."""
    jails = Jails().process(host.check_output("jls -nq").splitlines())
    assert settings.jail_name in jails, f"jail {settings.jail_name} is not running (running: {sorted(jails)})"


@pytest.mark.parametrize("parameter", JAIL_PARAMETERS)
def test_jail_parameter(running, jail_conf, parameter):
    """A lower securelevel, wider statfs view, looser devfs ruleset or child jails weaken the jail's walls."""
    wanted = parse_jail_conf_parameters(jail_conf)[parameter]
    assert str(running.get(parameter)) == wanted, f"{parameter}={running.get(parameter)}, jail.conf says {wanted}"


@pytest.mark.parametrize("parameter, wanted", [("allow.raw_sockets", False), ("sysvmsg", "disable"),
                                               ("sysvsem", "disable"), ("sysvshm", "disable")])
def test_jail_wall(running, parameter, wanted):
    """Raw sockets let a compromised tor forge packets; System V IPC would share objects with the host."""
    assert running.get(parameter) == wanted, f"{parameter}={running.get(parameter)}, expected {wanted}"


def test_jail_root_nosuid(host, settings, running):
    """A set-uid binary planted in the jail's root must not run set-uid (the jail.conf mount says nosuid)."""
    mounted = MountPoints().process(host.check_output("mount -p").splitlines()).get(settings.jail_root)
    assert mounted is not None, f"nothing is mounted on {settings.jail_root}"
    assert "nosuid" in mounted["options"], f"{settings.jail_root} is mounted {','.join(mounted['options'])}"


def test_jail_address(running, settings):
    """The relay ports are redirected to the jail address: without it the relay is unreachable."""
    assert settings.jail_ip in running.get("ip4.addr", []), f"ip4.addr={running.get('ip4.addr')}"


def test_jail_file_matches_rendered(host, settings, rendered, jail_file):
    """A hand-edited jail.conf or jail rc.conf is overwritten by the next deploy and may weaken the jail meanwhile."""
    if jail_file.startswith(settings.jail_root + "/"):
        require_jail_root_mounted(host, settings)
    assert host.file(jail_file).content_string == rendered[jail_file]


def test_jails_enabled(sysrc):
    """Without jail_enable, rc.d/jail refuses to start the jail when unlock asks it to."""
    assert sysrc("jail_enable") == "YES"


def test_jail_not_in_boot_list(sysrc, settings):
    """The image is locked after every boot: a jail started at boot would fail, or run from an unencrypted root."""
    boot_list = (sysrc("jail_list") or "").split()
    assert settings.jail_name not in boot_list, f"jail_list={' '.join(boot_list)}"


def test_exit_jail_runs_its_own_resolver(host, settings):
    """An exit resolves every destination of its users: through the host's (or a big public) resolver, that
    resolver sees and answers for all of them. local-unbound in the jail must run and answer the jail."""
    if not settings.exit_relay:
        pytest.skip("not an exit relay: the jail uses the host's resolv.conf")
    require_jail_running(host, settings)
    status = host.run("service -j %s local_unbound onestatus", settings.jail_name)
    assert status.rc == 0, f"local_unbound does not run in the jail: {status.stdout}{status.stderr}"
    answer = host.run("jexec %s local-unbound-control -c /var/unbound/unbound.conf status", settings.jail_name)
    assert answer.rc == 0 and "is running" in answer.stdout, f"{answer.stdout}{answer.stderr}"
