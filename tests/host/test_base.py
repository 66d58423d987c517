"""The host's base: kernel modules, relay sysctls, no crash dumps, packages from the configured branch.

The module and sysctl lists are the deploy's own (torjail.tasks.base), so the checks follow the deploy.
"""

import pytest

from host_checks import parse_sysctl_conf
from torjail.freebsd.kld import KernelModules
from torjail.freebsd.system import DumpDevice
from torjail.tasks.base import FIXED_SYSCTLS, KERNEL_MODULES, RAISED_SYSCTLS

LOADER_CONF = "/boot/loader.conf"
HOST_PKG_REPO = "/usr/local/etc/pkg/repos/FreeBSD.conf"
WANTED_SYSCTLS = {**FIXED_SYSCTLS, **RAISED_SYSCTLS}


def sysctl_meets(key, value):
    """Fixed sysctls must equal the wanted value; raised limits must be at least it."""
    if key in RAISED_SYSCTLS:
        return int(value) >= RAISED_SYSCTLS[key]
    return int(value) == FIXED_SYSCTLS[key]


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_kernel_module_loaded(host, module):
    """GELI and pf live in kernel modules: without them the vault cannot be unlocked and nothing is filtered."""
    loaded = KernelModules().process(host.check_output("kldstat").splitlines())
    assert module in loaded, f"{module}.ko is not loaded (kldstat lists {sorted(loaded)})"


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_kernel_module_loaded_at_boot(sysrc, module):
    """A module missing from loader.conf is gone after a reboot: no GELI to unlock with, no firewall at boot."""
    assert sysrc(f"{module}_load", LOADER_CONF) == "YES"


@pytest.mark.parametrize("key", WANTED_SYSCTLS)
def test_sysctl_now(host, key):
    """Predictable IP ids fingerprint the host; low socket and file limits let a busy relay fall over."""
    value = host.check_output("sysctl -n %s", key).strip()
    assert sysctl_meets(key, value), f"{key} is {value}, wanted {'at least ' if key in RAISED_SYSCTLS else ''}" \
                                     f"{WANTED_SYSCTLS[key]}"


@pytest.mark.parametrize("key", WANTED_SYSCTLS)
def test_sysctl_at_boot(host, key):
    """A value set only in the running kernel is lost at the next boot."""
    persisted = parse_sysctl_conf(host.file("/etc/sysctl.conf").content_string)
    assert key in persisted, f"/etc/sysctl.conf does not set {key}"
    assert sysctl_meets(key, persisted[key]), f"/etc/sysctl.conf sets {key}={persisted[key]}"


def test_no_crash_dump_device_now(host):
    """A crash dump writes memory, keys included, unencrypted to the swap partition."""
    result = host.run("dumpon -l")
    assert result.rc == 0, result.stderr
    assert DumpDevice().process(result.stdout.splitlines()) is None, f"dump device set: {result.stdout.strip()}"


@pytest.mark.parametrize("variable", ["dumpdev", "savecore_enable"])
def test_crash_dumps_off_at_boot(sysrc, variable):
    """rc.conf's defaults turn crash dumps (and savecore of them) back on at boot."""
    assert sysrc(variable) == "NO"


def test_host_package_repository(host, rendered):
    """Packages must come from the configured branch of the signed official repository, nowhere else."""
    assert host.file(HOST_PKG_REPO).content_string == rendered[HOST_PKG_REPO]


@pytest.mark.parametrize("variable", ["ntpd_enable", "ntpd_sync_on_start"])
def test_ntpd_at_boot(sysrc, variable):
    """Tor needs a correct clock; ntpd_sync_on_start steps a clock that is far off once at boot."""
    assert sysrc(variable) == "YES"


def test_ntpd_running(host):
    """A relay whose clock drifts has its consensus and certificates rejected."""
    result = host.run("service ntpd onestatus")
    assert result.rc == 0, f"service ntpd onestatus: {result.stdout}{result.stderr}"
