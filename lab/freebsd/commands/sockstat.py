"""sockstat(1): list Internet sockets with their owning process, in sockstat's column layout.

Sockets are the lab host's real ones (lab.freebsd.inet: those of its network namespace); each is mapped
to the processes holding it through /proc/PID/fd, and to a jail through the PID namespace the process runs in.
"""

import os
import sys

from lab.freebsd import cli, jails
from lab.freebsd.inet import sockets

USAGE = ("usage: sockstat [-46CciLlnqSsUuvw] [-j jid] [-p ports] [-P protocols]")
HEADER = "USER     COMMAND    PID   FD  PROTO  LOCAL ADDRESS         FOREIGN ADDRESS      "


def _format(ip, port):
    text = "*" if ip.is_unspecified else str(ip)
    return f"{text}:{port if port else '*'}"


def owners():
    """socket inode -> list of (pid, fd)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fd_dir = f"/proc/{entry}/fd"
        try:
            descriptors = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in descriptors:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                table.setdefault(int(target[8:-1]), []).append((int(entry), int(fd)))
    return table


def _user(pid, names):
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return "?"
    return names.get(uid, str(uid))


def _users():
    names = {}
    try:
        with open("/etc/passwd") as handle:
            for line in handle:
                fields = line.split(":")
                if len(fields) > 2 and fields[2].isdigit():
                    names.setdefault(int(fields[2]), fields[0])
    except OSError:
        pass
    return names


def _command(pid):
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return "?"


def _ports(text):
    ports = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or high and not high.isdigit():
            raise ValueError(part)
        ports.update(range(int(low), int(high or low) + 1))
    return ports


def row(user, command, pid, fd, sock):
    line = user + " "
    line = line.ljust(9) + command[:10]
    line = line.ljust(20) + f"{pid:5d} "
    line = line.ljust(26) + f"{fd:<3d} "
    line = line.ljust(30) + sock["proto"]
    line = line.ljust(37) + _format(*sock["local"])
    line = line.ljust(59) + _format(*sock["foreign"])
    return line


def main(argv):
    try:
        options, operands = cli.parse("sockstat", argv[1:], "46CcIij:LlnP:p:qSsUuvw", USAGE)
    except cli.UsageError as error:
        return error.status
    if operands:
        print(USAGE, file=sys.stderr)
        return 1
    flags = {letter[1] for letter, _ in options}
    values = {letter[1]: value for letter, value in options if value}
    families = tuple(f for f in (4, 6) if str(f) in flags) or (4, 6)
    protocols = ("tcp", "udp")
    if "P" in values:
        protocols = tuple(p for p in values["P"].split(",") if p in ("tcp", "udp"))
    try:
        ports = _ports(values["p"]) if "p" in values else None
    except ValueError:
        cli.warnx("sockstat", "syntax error in port range")
        return 1
    jail_namespace = None
    running = jails.running()
    if "j" in values:
        jail = jails.find(values["j"])
        if jail is None:
            cli.warnx("sockstat", f"jail \"{values['j']}\" not found")
            return 1
        jail_namespace = jail["jid"]
    names = {} if "n" in flags else _users()
    table = owners()
    lines = []
    for sock in sockets(protocols, families):
        if "l" in flags and not sock["listening"] or "c" in flags and sock["listening"]:
            continue
        if "L" in flags and (sock["local"][0].is_loopback or sock["foreign"][0].is_loopback):
            continue
        if ports is not None and sock["local"][1] not in ports and sock["foreign"][1] not in ports:
            continue
        if sock["family"] == 6 and sock["proto"].endswith("46") and 6 not in families:
            continue
        for pid, fd in table.get(sock["inode"], []):
            if jail_namespace is not None and jails.jail_of_pid(pid, running) != jail_namespace:
                continue
            lines.append(row(_user(pid, names), _command(pid), pid, fd, sock))
    if "q" not in flags:
        print(HEADER)
    for line in lines:
        print(line)
    return 0
