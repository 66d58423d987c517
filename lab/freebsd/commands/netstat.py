"""netstat(1): the lab host's sockets (`netstat -n -a`, `-an -p tcp`, `-f unix`) and routing tables (`-rn`),
in FreeBSD's column layout (usr.bin/netstat inet.c, unix.c, route.c without -W).

Internet sockets come from lab.freebsd.inet, UNIX domain sockets from /proc/net/unix (Linux's abstract sockets,
which FreeBSD has not, are left out), routes from the lab host's Linux routing table and interface addresses,
with interfaces named and numbered as ifconfig(8) shows them (link#N). The lab has no kernel addresses to
show: the Address, Inode and Conn columns of UNIX sockets are made from the socket's inode, with FreeBSD's
meaning kept (Inode is non-zero for a socket bound to a path, Conn for a connected one).
"""

import ipaddress
import json
import sys

from lab.freebsd import cli, hosttools, netif
from lab.freebsd.inet import sockets

USAGE = ("usage: netstat [-46AaLnRSTWx] [-f protocol_family | -p protocol]\n"
         "               [-M core] [-N system]\n"
         "       netstat -r [-46AnW] [-F fibnum] [-f address_family]\n"
         "               [-M core] [-N system]")
FAMILIES = {"inet": (4,), "inet6": (6,), "unix": (), "local": ()}
PROTOCOLS = ("tcp", "udp")
UNIX_TYPES = {"0001": "stream", "0002": "dgram", "0005": "seqpac"}
SO_ACCEPTCON = 0x10000
KERNEL_BASE = 0xfffff80000000000


def main(argv):
    return cli.run(_main, argv)


def _main(argv):
    opts, args = cli.parse("netstat", argv[1:], "46Aaf:np:rW", USAGE)
    if args:
        print(USAGE, file=sys.stderr)
        return 1
    flags = {opt for opt, _value in opts}
    values = dict(opts)
    families, show_unix = (4, 6), True
    if "-4" in flags or "-6" in flags:
        families, show_unix = tuple(f for f in (4, 6) if f"-{f}" in flags), False
    if "-f" in values:
        if values["-f"] not in FAMILIES:
            cli.warnx("netstat", f"{values['-f']}: unknown address family")
            return 1
        families, show_unix = FAMILIES[values["-f"]], values["-f"] in ("unix", "local")
    protocols = PROTOCOLS
    if "-p" in values:
        if values["-p"] not in PROTOCOLS:
            cli.warnx("netstat", f"{values['-p']}: unknown or uninstrumented protocol")
            return 1
        protocols, show_unix = (values["-p"],), False
    if "-r" in flags:
        return routing_tables(families)
    all_sockets = "-a" in flags
    internet(protocols, families, all_sockets)
    if show_unix:
        unix(all_sockets)
    return 0


# ----- Internet sockets (inet.c) -----

def _address(ip, port):
    """inetprint()/inet6print(): the host part cut to 16 characters, then `.port` (`*` for none)."""
    if ip.is_unspecified:
        host = "*"
    else:
        host = str(ip)
    return f"{host[:16]}.{port if port else '*'}"


def internet(protocols, families, all_sockets):
    first = True
    for proto in protocols:
        for sock in reversed(sockets((proto,), families)):
            if sock["listening"] and not all_sockets:
                continue
            if first:
                print("Active Internet connections" + (" (including servers)" if all_sockets else ""))
                print("%-5.5s %-6.6s %-6.6s %-22.22s %-22.22s (state)" % (
                    "Proto", "Recv-Q", "Send-Q", "Local Address", "Foreign Address"))
                first = False
            line = "%-5.5s %6u %6u %-22.22s %-22.22s " % (
                sock["proto"], sock["recv_q"], sock["send_q"], _address(*sock["local"]), _address(*sock["foreign"]))
            if proto == "tcp":
                line += "%-11s" % sock["state"]
            print(line)


# ----- UNIX domain sockets (unix.c) -----

def _unix_sockets():
    found = []
    try:
        with open("/proc/net/unix") as handle:
            lines = handle.readlines()[1:]
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        flags, kind, state, inode = int(fields[3], 16), fields[4], fields[5], int(fields[6])
        path = fields[7] if len(fields) > 7 else None
        if path is not None and path.startswith("@"):
            continue
        found.append({"type": UNIX_TYPES.get(kind, "?"), "inode": inode, "path": path,
                      "bound": path is not None and (flags & SO_ACCEPTCON or state == "01"),
                      "connected": state == "03"})
    return found


def unix(all_sockets):
    first = True
    for kind in ("stream", "dgram", "seqpac"):
        for sock in reversed(_unix_sockets()):
            if sock["type"] != kind or (not all_sockets and not sock["connected"]):
                continue
            if first:
                print("Active UNIX domain sockets")
                print("%-16.16s %-6.6s %6.6s %6.6s %16.16s %16.16s %16.16s %16.16s Addr" % (
                    "Address", "Type", "Recv-Q", "Send-Q", "Inode", "Conn", "Refs", "Nextref"))
                first = False
            address = KERNEL_BASE | sock["inode"] << 8
            line = "%16x %-6.6s %6u %6u %16x %16x %16x %16x" % (
                address, kind, 0, 0, address | 0x80 if sock["bound"] else 0,
                address ^ 0x40 if sock["connected"] else 0, 0, 0)
            if sock["path"]:
                line += " " + sock["path"]
            print(line)


# ----- routing tables (route.c) -----

def _link_numbers():
    """FreeBSD interface name -> (its index as `link#N`, whether it is a loopback), in ifconfig's order."""
    return {link["name"]: (number, netif.is_loopback(link["name"]))
            for number, link in enumerate(netif.interfaces(), start=1)}


def _linux_routes(family):
    output = hosttools.run("ip", f"-{family}", "-j", "route", "show", "table", "main", check=False).stdout
    return json.loads(output or "[]")


def _route_entries(family, links):
    """(destination network, gateway text, flags, interface) of every route FreeBSD would list."""
    entries = []
    for route in _linux_routes(family):
        interface = netif.to_freebsd(route.get("dev", ""))
        if interface not in links:
            continue
        dst = route["dst"]
        network = ipaddress.ip_network("0.0.0.0/0" if family == 4 else "::/0") if dst == "default" \
            else ipaddress.ip_network(dst, strict=False)
        if family == 6 and network.network_address.is_loopback:
            continue  # ::1, listed below with the interface addresses
        if "gateway" in route:
            entries.append((network, route["gateway"], "UGS", interface))
        elif network.prefixlen < network.max_prefixlen:
            entries.append((network, f"link#{links[interface][0]}", "U" if route.get("protocol") == "kernel"
                            else "US", interface))
    lo0 = netif.FREEBSD_LOOPBACK
    for link in netif.interfaces():
        name = link["name"]
        for address in netif.addresses(link, "inet" if family == 4 else "inet6"):
            host = ipaddress.ip_network(address.ip)
            if links[name][1]:
                flags = "UHS" if family == 6 else "UH"
                entries.append((host, f"link#{links[name][0]}", flags, name))
            else:
                entries.append((host, f"link#{links[name][0]}", "UHS", lo0))
    if family == 6:
        for reject in ("::/96", "::ffff:0.0.0.0/96", "fe80::/10", "ff02::/16"):
            entries.append((ipaddress.ip_network(reject), "::1", "URS", lo0))
    return sorted(set(entries), key=lambda entry: (int(entry[0].network_address), entry[0].prefixlen))


def _destination(network, interface):
    if network.prefixlen == 0:
        return "default"
    text = str(network.network_address)
    if network.version == 6 and network.network_address.is_link_local:
        text += f"%{interface}"
    return text if network.prefixlen == network.max_prefixlen else f"{text}/{network.prefixlen}"


def routing_tables(families):
    links = _link_numbers()
    print("Routing tables")
    for family in families:
        dst_width, gw_width = (18, 18) if family == 4 else (33, 29)
        print("\nInternet:" if family == 4 else "\nInternet6:")
        print("%-*.*s %-*.*s %-6.6s %8.8s %6s" % (dst_width, dst_width, "Destination", gw_width, gw_width, "Gateway",
                                                 "Flags", "Netif", "Expire"))
        for network, gateway, flags, interface in _route_entries(family, links):
            print("%-*.*s %-*.*s %-6.6s %8.8s" % (dst_width, dst_width, _destination(network, interface), gw_width,
                                                  gw_width, gateway, flags, interface))
    return 0
