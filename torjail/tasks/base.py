"""Base of the host: pkg from the configured branch, relay sysctls, GELI and pf kernel modules, no crash dumps,
and a clock kept right by ntpd.

Crash dumps would write memory (keys included) unencrypted to the swap partition, so they are off now and at boot.
Tor needs a correct clock: a relay whose clock is off has its consensus and certificates rejected (and its
accounting periods drift), so base's ntpd runs, stepping a clock that is far off once at boot.
"""

from torjail.freebsd import kld, pkg, rc, service, sysctl, system
from torjail.procedures import files as host_files
from torjail.render import render_file

# Relay guide values: random IP ids always; limits only ever raised (a bigger server keeps its own values).
FIXED_SYSCTLS = {"net.inet.ip.random_id": 1}
RAISED_SYSCTLS = {"kern.ipc.somaxconn": 4096, "kern.ipc.nmbclusters": 262144, "kern.maxfiles": 65536}
KERNEL_MODULES = ("geom_eli", "pf", "pflog")
PKG_REPO_CONF = "/usr/local/etc/pkg/repos/FreeBSD.conf"


def apply(settings):
    host_files.put(name="Package repository branch", content=render_file(settings, "pkg-repo.conf.j2"),
                   dest=PKG_REPO_CONF, mode="644")
    pkg.bootstrapped(name="Bootstrap pkg")
    every_key = tuple(sorted({**FIXED_SYSCTLS, **RAISED_SYSCTLS}))
    for key, value in FIXED_SYSCTLS.items():
        sysctl.value(name=f"sysctl {key}", key=key, value=value, read_with=every_key)
    for key, value in RAISED_SYSCTLS.items():
        sysctl.value(name=f"sysctl {key} (raise only)", key=key, value=value, raise_only=True, read_with=every_key)
    for module in KERNEL_MODULES:
        kld.module(name=f"Kernel module {module}", module=module)
    rc.value(name="No crash dump device at boot", variable="dumpdev", value="NO")
    rc.value(name="No savecore at boot", variable="savecore_enable", value="NO")
    system.dumps_off(name="Crash dumps off now")
    rc.value(name="ntpd at boot", variable="ntpd_enable", value="YES")
    rc.value(name="ntpd steps a clock far off at boot", variable="ntpd_sync_on_start", value="YES")
    service.service(name="ntpd running", service="ntpd")
