"""The lab host's Internet sockets as the kernel lists them (/proc/net/tcp, tcp6, udp, udp6 of its network
namespace), for sockstat(1) and netstat(1). An IPv4 peer on an IPv6 socket shows as the IPv4 address."""

import ipaddress
import struct

TCP_LISTEN = "0A"
TCP_CLOSE = "07"
# Linux TCP states (include/net/tcp_states.h) by their names in FreeBSD's tcpstates[].
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RCVD", "04": "FIN_WAIT_1", "05": "FIN_WAIT_2",
              "06": "TIME_WAIT", "07": "CLOSED", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN",
              "0B": "CLOSING"}


def decode(address, family):
    host, port = address.split(":")
    raw = bytes.fromhex(host)
    if family == 4:
        ip = ipaddress.IPv4Address(struct.pack("<I", int(host, 16)))
    else:
        words = struct.unpack("<4I", raw)
        ip = ipaddress.IPv6Address(struct.pack(">4I", *words))
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
    return ip, int(port, 16)


def sockets(protocols=("tcp", "udp"), families=(4, 6)):
    """Sockets of the network namespace: dicts with proto (tcp4, udp6, tcp46...), family, local and foreign
    (address, port), listening, state (FreeBSD's name, tcp only), recv_q, send_q and inode."""
    found = []
    for proto in protocols:
        for family in families:
            path = f"/proc/net/{proto}{'6' if family == 6 else ''}"
            try:
                with open(path) as handle:
                    lines = handle.readlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                local, foreign, state, inode = fields[1], fields[2], fields[3], int(fields[9])
                send_q, recv_q = (int(value, 16) for value in fields[4].split(":"))
                local_ip, local_port = decode(local, family)
                foreign_ip, foreign_port = decode(foreign, family)
                listening = state == TCP_LISTEN if proto == "tcp" else foreign_port == 0
                if proto == "tcp" and state == TCP_CLOSE:
                    continue
                name = proto + ("4" if family == 4 else "6")
                if family == 6 and local_ip.version == 4:
                    name = proto + "46"
                found.append({"proto": name, "family": family, "local": (local_ip, local_port),
                              "foreign": (foreign_ip, foreign_port), "listening": listening,
                              "state": TCP_STATES.get(state, "") if proto == "tcp" else "",
                              "recv_q": recv_q, "send_q": send_q, "inode": inode})
    return found
