"""The sysctl MIB of a lab host: the OIDs the project reads or tunes, with FreeBSD 14 defaults for a 4 GB
amd64 VM. Values written at run time live in the kernel state "sysctl" (lost at reboot, as on FreeBSD);
a few OIDs are computed from other kernel state (swap, dump device, whether we run inside a jail).
"""

import os
import socket

from lab.freebsd import kernel
from lab.freebsd.userland import version

PHYSMEM = 4265721856
PAGE = 4096


def _jailed():
    """Inside a lab jail, PID 1 of our PID namespace is the jail's first process."""
    try:
        with open("/proc/1/cmdline", "rb") as handle:
            return 1 if b"lab.freebsd.jailinit" in handle.read() else 0
    except OSError:
        return 0


def _osrelease():
    """The running kernel's release: what the kernel file said when the lab host booted (lab.boot records it)."""
    return kernel.read("kern", {}).get("osrelease") or version.VERSION


def _swap_total():
    return sum(device["size"] for device in kernel.read("swap", {}).get("devices", []))


def _dumpdev():
    return kernel.read("dump", {}).get("device", "")


# name: (default or callable, writable, kind) -- kind "int" or "str"
OIDS = {
    "hw.machine": ("amd64", False, "str"),
    "hw.model": ("QEMU Virtual CPU version 2.5+", False, "str"),
    "hw.ncpu": (lambda: os.cpu_count() or 1, False, "int"),
    "hw.pagesize": (PAGE, False, "int"),
    "hw.physmem": (PHYSMEM, False, "int"),
    "hw.realmem": (4294967296, False, "int"),
    "hw.usermem": (PHYSMEM - 262144 * PAGE, False, "int"),
    "kern.bootfile": ("/boot/kernel/kernel", False, "str"),
    "kern.coredump": (1, True, "int"),
    "kern.corefile": ("%N.core", True, "str"),
    "kern.hostname": (socket.gethostname, True, "str"),
    "kern.ipc.maxsockbuf": (2097152, True, "int"),
    "kern.ipc.nmbclusters": (PHYSMEM // 2 // 2048 // 4, True, "int"),
    "kern.ipc.soacceptqueue": (128, True, "int"),
    "kern.ipc.somaxconn": (128, True, "int"),
    "kern.maxfiles": (130032, True, "int"),
    "kern.maxfilesperproc": (117027, True, "int"),
    "kern.maxproc": (6740, False, "int"),
    "kern.osrelease": (_osrelease, False, "str"),
    "kern.ostype": ("FreeBSD", False, "str"),
    "kern.randompid": (0, True, "int"),
    "kern.securelevel": (-1, True, "int"),
    "kern.shutdown.dumpdevname": (_dumpdev, False, "str"),
    "net.inet.icmp.drop_redirect": (0, True, "int"),
    "net.inet.ip.forwarding": (0, True, "int"),
    "net.inet.ip.random_id": (0, True, "int"),
    "net.inet.ip.redirect": (1, True, "int"),
    "net.inet.tcp.blackhole": (0, True, "int"),
    "net.inet.tcp.cc.algorithm": ("newreno", True, "str"),
    "net.inet.tcp.drop_synfin": (0, True, "int"),
    "net.inet.tcp.recvbuf_max": (2097152, True, "int"),
    "net.inet.tcp.sendbuf_max": (2097152, True, "int"),
    "net.inet.udp.blackhole": (0, True, "int"),
    "net.inet6.ip6.forwarding": (0, True, "int"),
    "security.bsd.hardlink_check_gid": (0, True, "int"),
    "security.bsd.hardlink_check_uid": (0, True, "int"),
    "security.bsd.see_jail_proc": (1, True, "int"),
    "security.bsd.see_other_gids": (1, True, "int"),
    "security.bsd.see_other_uids": (1, True, "int"),
    "security.bsd.unprivileged_proc_debug": (1, True, "int"),
    "security.bsd.unprivileged_read_msgbuf": (1, True, "int"),
    "security.jail.jailed": (_jailed, False, "int"),
    # A lab jail never has allow.set_hostname (the jail sets its hostname once, from host.hostname).
    "security.jail.set_hostname_allowed": (lambda: 0 if _jailed() else 1, False, "int"),
    # Lab jails share the lab host's network stack: none is a VNET jail.
    "security.jail.vnet": (0, False, "int"),
    "vm.overcommit": (0, True, "int"),
    "vm.stats.vm.v_free_count": (lambda: PHYSMEM // PAGE * 9 // 10, False, "int"),
    "vm.stats.vm.v_inactive_count": (lambda: PHYSMEM // PAGE // 20, False, "int"),
    "vm.stats.vm.v_page_count": (PHYSMEM // PAGE, False, "int"),
    "vm.stats.vm.v_page_size": (PAGE, False, "int"),
    "vm.stats.vm.v_wire_count": (lambda: PHYSMEM // PAGE // 20, False, "int"),
    "vm.swap_enabled": (1, True, "int"),
    "vm.swap_total": (_swap_total, False, "int"),
}
# OIDs that may only grow at run time (the kernel refuses a smaller value).
GROW_ONLY = {"kern.ipc.nmbclusters"}


class SysctlError(Exception):
    pass


def names(prefix=""):
    """Known OIDs equal to or under `prefix`, sorted."""
    if prefix == "" or prefix in OIDS:
        return sorted(OIDS) if prefix == "" else [prefix]
    return sorted(name for name in OIDS if name.startswith(prefix + "."))


def get(name):
    default, _writable, _kind = OIDS[name]
    stored = kernel.read("sysctl", {}).get("values", {})
    if name in stored:
        return stored[name]
    return default() if callable(default) else default


def set_value(name, text):
    """Write an OID; returns the old value. Raises SysctlError with sysctl(8)'s message tail."""
    default, writable, kind = OIDS[name]
    if not writable:
        raise SysctlError(f"oid '{name}' is read only")
    if _jailed():
        raise SysctlError(f"{name}={text}: Operation not permitted")
    old = get(name)
    if kind == "int":
        try:
            value = int(text, 0)
        except ValueError:
            raise SysctlError(f"invalid integer '{text}'")
        if name in GROW_ONLY and value < old:
            raise SysctlError(f"{name}={text}: Invalid argument")
        if name == "kern.securelevel" and value < old:
            raise SysctlError(f"{name}={text}: Operation not permitted")
    else:
        value = text
    if name == "kern.hostname":
        socket.sethostname(value)
    with kernel.update("sysctl", {}) as state:
        state.setdefault("values", {})[name] = value
        if name in ("kern.ipc.somaxconn", "kern.ipc.soacceptqueue"):
            state["values"]["kern.ipc.somaxconn"] = state["values"]["kern.ipc.soacceptqueue"] = value
    return old
