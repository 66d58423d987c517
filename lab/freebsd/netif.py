"""Network interfaces of a lab host, seen and changed the FreeBSD way.

The lab host's interfaces are real Linux links in its network namespace; this module translates between the
two worlds: Linux `lo` is FreeBSD's `lo0`, and a cloned loopback (`lo1`) is a persistent tun device, since
this machine has no `dummy` link type. Addresses are real, so sockets bound to a jail's address work.
ifconfig(8) and jail(8) (ip4.addr) both go through here, as both go through the kernel on FreeBSD.
"""

import fcntl
import ipaddress
import json
import os
import stat
import struct

from lab.freebsd import hosttools

LINUX_LOOPBACK = "lo"
FREEBSD_LOOPBACK = "lo0"
CLONABLE_PREFIXES = ("lo",)
TUN_DEVICE = (10, 200)        # /dev/net/tun's major and minor
TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


class InterfaceError(Exception):
    """A request the kernel refuses; the message is what ifconfig(8) prints after `ifconfig: `."""


def to_linux(name):
    return LINUX_LOOPBACK if name == FREEBSD_LOOPBACK else name


def to_freebsd(name):
    return FREEBSD_LOOPBACK if name == LINUX_LOOPBACK else name


def is_loopback(name):
    return name.startswith("lo") and name[2:].isdigit()


def interfaces():
    """All interfaces in FreeBSD order (boot-time Ethernet first, then lo0, then clones), as dicts from `ip -j`."""
    links = json.loads(hosttools.run("ip", "-j", "addr", "show").stdout or "[]")
    for link in links:
        link["name"] = to_freebsd(link["ifname"])

    def order(link):
        if link["ifname"] == LINUX_LOOPBACK:
            return (1, 0)
        if link.get("link_type") == "ether" and link.get("ifindex", 0) < 100:
            return (0, link["ifindex"])
        return (2, link["ifindex"])

    return sorted(links, key=order)


def find(name):
    for link in interfaces():
        if link["name"] == name:
            return link
    return None


def addresses(link, family=None):
    """The addresses of one interface as ipaddress interfaces (address with prefix)."""
    result = []
    for info in link.get("addr_info", []):
        if family and info["family"] != family:
            continue
        result.append(ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}"))
    return result


def all_addresses():
    return [address for link in interfaces() for address in addresses(link)]


def exists(name):
    return find(name) is not None


def create(name):
    """Clone an interface (`ifconfig lo1 create`); `lo` alone picks the next free unit. Returns the name."""
    if not name.startswith(CLONABLE_PREFIXES):
        raise InterfaceError(f"SIOCIFCREATE2 ({name}): Invalid argument")
    if name == "lo":
        unit = 1
        while exists(f"lo{unit}") and unit < 1000:
            unit += 1
        name = f"lo{unit}"
    if not is_loopback(name) or name == FREEBSD_LOOPBACK:
        if exists(name):
            raise InterfaceError(f"SIOCIFCREATE2 ({name}): File exists")
        raise InterfaceError(f"SIOCIFCREATE2 ({name}): Invalid argument")
    if exists(name):
        raise InterfaceError(f"SIOCIFCREATE2 ({name}): File exists")
    _make_persistent_tun(name)
    return name


def _make_persistent_tun(name):
    """Create a persistent tun link through a transient node for Linux's tun clone device: the lab's /dev
    shows FreeBSD names only, and the kernel state directory does not allow device nodes."""
    node = f"/dev/.tun-{os.getpid()}"
    os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(*TUN_DEVICE))
    try:
        fd = os.open(node, os.O_RDWR)
    finally:
        os.unlink(node)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
        fcntl.ioctl(fd, TUNSETPERSIST, 1)
    finally:
        os.close(fd)


def destroy(name):
    if not exists(name):
        raise InterfaceError(f"interface {name} does not exist")
    if name == FREEBSD_LOOPBACK or not is_loopback(name):
        raise InterfaceError("SIOCIFDESTROY: Invalid argument")
    hosttools.run("ip", "link", "del", "dev", to_linux(name))


def set_up(name, up=True):
    hosttools.run("ip", "link", "set", "dev", to_linux(name), "up" if up else "down")


def add_address(name, address):
    """Add an address (ipaddress interface) as an alias; FreeBSD brings the interface up with it.
    Adding an address the interface already has changes nothing and succeeds, as SIOCAIFADDR does."""
    link = find(name)
    if link is None:
        raise InterfaceError(f"interface {name} does not exist")
    if address in addresses(link):
        set_up(name)
        return
    args = ["addr", "add", str(address), "dev", to_linux(name)]
    if address.version == 4 and address.network.prefixlen < 31 and not is_loopback(name):
        args[3:3] = ["broadcast", str(address.network.broadcast_address)]
    hosttools.run("ip", *args)
    set_up(name)


def remove_address(name, address):
    """Remove one address; the prefix may be omitted (FreeBSD matches the address alone)."""
    link = find(name)
    if link is None:
        raise InterfaceError(f"interface {name} does not exist")
    for present in addresses(link):
        if present.ip == address.ip:
            hosttools.run("ip", "addr", "del", str(present), "dev", to_linux(name))
            return
    raise InterfaceError("ioctl (SIOCDIFADDR): Can't assign requested address")
