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
    sysctl.values(name="Relay sysctls (limits raised only)", values={**FIXED_SYSCTLS, **RAISED_SYSCTLS},
                  raise_only=tuple(RAISED_SYSCTLS))
    kld.modules(name="Kernel modules now and at boot", modules=KERNEL_MODULES)
    rc.values(name="No crash dump device and no savecore at boot",
              assignments={"dumpdev": "NO", "savecore_enable": "NO"})
    system.dumps_off(name="Crash dumps off now")
    rc.values(name="ntpd at boot, stepping a clock far off",
              assignments={"ntpd_enable": "YES", "ntpd_sync_on_start": "YES"})
    service.service(name="ntpd running", service="ntpd")
