"""ifconfig(8): show interfaces in FreeBSD's format, clone/destroy loopbacks, add and remove addresses.

The interfaces are the lab host's real Linux links (lab.freebsd.netif); this module only speaks FreeBSD:
flags words and hex values, netmask in hex, scope ids, groups, and ifconfig's error messages.
"""

import ipaddress
import subprocess
import sys

from lab.freebsd import cli, netif

USAGE = """usage: ifconfig [-j jail] [-f type:format] [-L] [-C] [-g groupname] interface address_family
                [address [dest_address]] [parameters]
       ifconfig [-j jail] interface create
       ifconfig [-j jail] -a [-L] [-C] [-g groupname] [-d] [-m] [-u] [-v] [address_family]
       ifconfig [-j jail] -l [-d] [-u] [address_family]
       ifconfig [-j jail] [-L] [-C] [-g groupname] [-d] [-m] [-u] [-v]"""
FLAG_BITS = [("UP", 0x1), ("BROADCAST", 0x2), ("LOOPBACK", 0x8), ("POINTOPOINT", 0x10), ("RUNNING", 0x40),
             ("NOARP", 0x80), ("PROMISC", 0x100), ("SIMPLEX", 0x800), ("MULTICAST", 0x8000),
             ("LOWER_UP", 0x1000000)]
ETHER_OPTIONS = "options=4c079b<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,VLAN_HWCSUM,TSO4,TSO6,LRO,VLAN_HWTSO," \
                "LINKSTATE,TXCSUM_IPV6>"
LOOPBACK_OPTIONS = "options=680003<RXCSUM,TXCSUM,LINKSTATE,RXCSUM_IPV6,TXCSUM_IPV6>"
LOOPBACK_MTU = 16384


def _flags(link):
    up = "UP" in link.get("flags", [])
    if netif.is_loopback(link["name"]):
        names = {"LOOPBACK", "MULTICAST"} | ({"UP", "RUNNING", "LOWER_UP"} if up else set())
    else:
        names = {"BROADCAST", "SIMPLEX", "MULTICAST"} | ({"UP", "RUNNING", "LOWER_UP"} if up else set())
    value = sum(bit for name, bit in FLAG_BITS if name in names)
    words = ",".join(name for name, _ in FLAG_BITS if name in names)
    return f"flags={value:x}<{words}>"


def describe(link, index):
    """The lines `ifconfig IF` prints for one interface."""
    name = link["name"]
    loopback = netif.is_loopback(name)
    mtu = LOOPBACK_MTU if loopback else link.get("mtu", 1500)
    lines = [f"{name}: {_flags(link)} metric 0 mtu {mtu}", "\t" + (LOOPBACK_OPTIONS if loopback else ETHER_OPTIONS)]
    if not loopback and link.get("address"):
        lines.append(f"\tether {link['address']}")
    for info in link.get("addr_info", []):
        if info["family"] == "inet":
            network = ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}").network
            line = f"\tinet {info['local']} netmask 0x{int(network.netmask):08x}"
            if not loopback and network.prefixlen < 31:
                line += f" broadcast {info.get('broadcast') or network.broadcast_address}"
            lines.append(line)
    for info in link.get("addr_info", []):
        if info["family"] == "inet6":
            address = ipaddress.ip_address(info["local"])
            if address.is_link_local:
                lines.append(f"\tinet6 {address}%{name} prefixlen {info['prefixlen']} scopeid 0x{index:x}")
            else:
                lines.append(f"\tinet6 {address} prefixlen {info['prefixlen']}")
    if loopback:
        lines.append("\tgroups: lo")
    else:
        lines.append("\tmedia: Ethernet autoselect (10Gbase-T <full-duplex>)")
        lines.append("\tstatus: active" if "UP" in link.get("flags", []) else "\tstatus: no carrier")
    lines.append("\tnd6 options=21<PERFORMNUD,AUTO_LINKLOCAL>" if name == netif.FREEBSD_LOOPBACK
                 else "\tnd6 options=29<PERFORMNUD,IFDISABLED,AUTO_LINKLOCAL>")
    return lines


def _groups(link):
    return ["lo"] if netif.is_loopback(link["name"]) else []


def main(argv):
    try:
        options, operands = cli.parse("ifconfig", argv[1:], "adf:g:j:lmuvCL", USAGE)
    except cli.UsageError as error:
        return error.status
    flags = {letter[1] for letter, _ in options}
    group = next((value for letter, value in options if letter == "-g"), None)
    links = netif.interfaces()
    if "u" in flags:
        links = [link for link in links if "UP" in link.get("flags", [])]
    if "d" in flags:
        links = [link for link in links if "UP" not in link.get("flags", [])]
    if "l" in flags:
        if operands and operands[0] not in ("inet", "inet6", "ether", "link"):
            print(USAGE, file=sys.stderr)
            return 1
        print(" ".join(link["name"] for link in links))
        return 0
    if group and not operands:
        for link in links:
            if group in _groups(link):
                print(link["name"])
        return 0
    if "a" in flags or not operands:
        for index, link in enumerate(links, start=1):
            print("\n".join(describe(link, index)))
        return 0
    return _configure(operands[0], operands[1:], links)


def _configure(name, words, links):
    if words in (["create"], ["plumb"]):
        return _do(lambda: _print_created(name, netif.create(name)))
    if words in (["destroy"], ["unplumb"]):
        return _do(lambda: netif.destroy(name))
    index = next((i for i, link in enumerate(links, start=1) if link["name"] == name), None)
    if index is None:
        cli.warnx("ifconfig", f"interface {name} does not exist")
        return 1
    if not words:
        print("\n".join(describe(links[index - 1], index)))
        return 0
    return _do(lambda: _apply(name, words))


def _print_created(requested, created):
    if requested != created:
        print(created)


def _do(action):
    try:
        action()
    except netif.InterfaceError as error:
        cli.warnx("ifconfig", str(error))
        return 1
    except (OSError, subprocess.CalledProcessError) as error:
        cli.warnx("ifconfig", (getattr(error, "stderr", None) or str(error)).strip())
        return 1
    return 0


def _apply(name, words):
    family, address, netmask, prefixlen, mode, state = "inet", None, None, None, "set", None
    position = 0
    while position < len(words):
        word = words[position]
        position += 1
        if word in ("inet", "inet6"):
            family = word
        elif word in ("alias", "add"):
            mode = "alias"
        elif word in ("-alias", "delete", "remove"):
            mode = "remove"
        elif word in ("up", "down"):
            state = word
        elif word in ("netmask", "prefixlen", "mtu", "metric", "description", "broadcast"):
            if position >= len(words):
                raise netif.InterfaceError(f"{word}: missing argument")
            value = words[position]
            position += 1
            if word == "netmask":
                netmask = value
            elif word == "prefixlen":
                prefixlen = value
        elif address is None:
            address = word
        else:
            raise netif.InterfaceError(f"{word}: bad value")
    if address is not None:
        interface = _parse_address(family, address, netmask, prefixlen)
        if mode == "remove":
            netif.remove_address(name, interface)
        else:
            if mode == "set":
                link = netif.find(name)
                current = [a for a in netif.addresses(link, family)]
                if current:
                    netif.remove_address(name, current[0])
            netif.add_address(name, interface)
    if state:
        netif.set_up(name, state == "up")


def _parse_address(family, text, netmask, prefixlen):
    try:
        if "/" in text:
            return ipaddress.ip_interface(text)
        if netmask:
            mask = str(ipaddress.ip_address(int(netmask, 16))) if netmask.startswith("0x") else netmask
            return ipaddress.ip_interface(f"{text}/{mask}")
        if prefixlen:
            return ipaddress.ip_interface(f"{text}/{prefixlen}")
        address = ipaddress.ip_address(text)
    except ValueError:
        raise netif.InterfaceError(f"{text}: bad value") from None
    if family == "inet" and address.version == 4:
        # Classful default mask, as FreeBSD still applies when none is given.
        first = int(str(address).split(".")[0])
        bits = 8 if first < 128 else 16 if first < 192 else 24
        return ipaddress.ip_interface(f"{address}/{bits}")
    return ipaddress.ip_interface(f"{address}/64")
