"""jail.conf(5) as jail(8) reads it: jail blocks, global parameters, `+=`, booleans, `$var`/`${param}`.

parse(path) reads one file (following `.include`), and resolve(config, name) returns the parameters of one
jail (global ones merged with its block, variables and parameter references substituted) as a dict of
name -> list of values, with booleans as True/False. Parameter names are checked against the parameters
FreeBSD 14 knows (kernel ones and jail(8)'s own), so a misspelt one is refused like jail(8) refuses it.
"""

import glob
import re

KERNEL_PARAMETERS = {
    "jid", "name", "path", "host.hostname", "host.domainname", "host.hostuuid", "host.hostid", "host",
    "ip4.addr", "ip4.saddrsel", "ip4", "ip6.addr", "ip6.saddrsel", "ip6", "vnet", "securelevel", "enforce_statfs",
    "children.max", "children.cur", "devfs_ruleset", "persist", "dying", "parent", "osrelease", "osreldate",
    "cpuset.id", "sysvmsg", "sysvsem", "sysvshm", "linux", "linux.osname", "linux.osrelease",
    "linux.oss_version", "meta", "env", "zfs.mount_snapshot", "nfsd",
}
ALLOW_PARAMETERS = {
    "set_hostname", "sysvipc", "raw_sockets", "chflags", "mount", "mount.devfs", "mount.fdescfs",
    "mount.fusefs", "mount.nullfs", "mount.procfs", "mount.linprocfs", "mount.linsysfs", "mount.tmpfs",
    "mount.zfs", "quotas", "socket_af", "mlock", "reserved_ports", "unprivileged_proc_debug", "suser",
    "read_msgbuf", "nfsd", "extattr", "adjtime", "settime", "routing", "setaudit", "vmm",
    "unprivileged_parent_tampering",
}
PSEUDO_PARAMETERS = {
    "exec.prepare", "exec.prestart", "exec.created", "exec.start", "command", "exec.poststart",
    "exec.prestop", "exec.stop", "exec.poststop", "exec.release", "exec.clean", "exec.jail_user",
    "exec.system_jail_user", "exec.system_user", "exec.timeout", "exec.consolelog", "exec.fib",
    "stop.timeout", "interface", "vnet.interface", "ip_hostname", "mount", "mount.fstab", "mount.devfs",
    "mount.fdescfs", "mount.procfs", "allow.dying", "depend", "zfs.dataset",
}
BOOLEAN_PARAMETERS = {
    "persist", "dying", "exec.clean", "exec.system_jail_user", "ip_hostname", "mount.devfs", "mount.fdescfs",
    "mount.procfs", "allow.dying", "ip4.saddrsel", "ip6.saddrsel",
} | {f"allow.{name}" for name in ALLOW_PARAMETERS}


class JailConfError(Exception):
    """Message printed after `jail: `."""


def known(name):
    """Whether `name` (without a `no` prefix) is a parameter jail(8) accepts."""
    return name in KERNEL_PARAMETERS or name in PSEUDO_PARAMETERS or (
        name.startswith("allow.") and name[6:] in ALLOW_PARAMETERS)


def boolean_name(name):
    """Split `nopersist` / `allow.nomount` into (`persist`, False); other names come back with True."""
    head, _, tail = name.rpartition(".")
    if tail.startswith("no") and known((head + "." if head else "") + tail[2:]):
        return (head + "." if head else "") + tail[2:], False
    return name, True


_TOKEN = re.compile(r"""
    (?P<space>[ \t\r]+) | (?P<newline>\n) | (?P<comment>\#[^\n]*|//[^\n]*) | (?P<block>/\*.*?\*/) |
    (?P<dq>"(?:[^"\\]|\\.)*") | (?P<sq>'[^']*') | (?P<append>\+=) | (?P<punct>[{};=,]) |
    (?P<word>[^\s{};=,"'#]+)
""", re.X | re.S)


def _tokens(text, filename):
    line = 1
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise JailConfError(f"{filename} line {line}: syntax error")
        kind, value = match.lastgroup, match.group(0)
        position = match.end()
        if kind == "newline":
            line += 1
        elif kind == "block":
            line += value.count("\n")
        elif kind in ("dq", "sq"):
            yield kind, value[1:-1], line
            line += value.count("\n")
        elif kind not in ("space", "comment"):
            yield kind, value, line


def parse(path, _depth=0):
    """Read a jail.conf file into a list of statements: (jail name or None, parameter, operator, values)."""
    with open(path) as handle:
        text = handle.read()
    tokens = list(_tokens(text, path))
    statements = []
    index = 0
    current = None

    def error(at):
        line = tokens[at][2] if at < len(tokens) else (tokens[-1][2] if tokens else 1)
        return JailConfError(f"{path} line {line}: syntax error")

    while index < len(tokens):
        kind, value, line = tokens[index]
        if kind == "punct" and value == "}" and current is not None:
            current = None
            index += 1
            continue
        if kind == "word" and value == ".include" and current is None:
            if index + 2 >= len(tokens) or tokens[index + 2][1] != ";":
                raise error(index)
            for included in sorted(glob.glob(tokens[index + 1][1])):
                if _depth < 8:
                    statements.extend(parse(included, _depth + 1))
            index += 3
            continue
        if kind not in ("word", "dq", "sq"):
            raise error(index)
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if following and following[1] == "{" and current is None:
            current = value
            index += 2
            continue
        index += 1
        if following and following[1] == ";":
            statements.append((current, value, "=", None))
            index += 1
            continue
        if not following or following[0] not in ("punct", "append") or following[1] not in ("=", "+="):
            raise error(index)
        operator = following[1]
        index += 1
        values = []
        while True:
            if index >= len(tokens) or tokens[index][0] not in ("word", "dq", "sq"):
                raise error(index)
            values.append((tokens[index][0], tokens[index][1]))
            index += 1
            if index < len(tokens) and tokens[index][1] == ",":
                index += 1
                continue
            if index < len(tokens) and tokens[index][1] == ";":
                index += 1
                break
            raise error(index)
        statements.append((current, value, operator, values))
    if current is not None:
        raise error(len(tokens))
    return statements


def jail_names(statements):
    names = []
    for jail, *_ in statements:
        if jail and jail != "*" and jail not in names:
            names.append(jail)
    return names


def resolve(statements, name):
    """Parameters of jail `name` (global and its own), substituted; raise JailConfError when unknown."""
    if name not in jail_names(statements):
        raise JailConfError(f'"{name}" not found')
    raw = {"name": [("word", name)]}
    variables = {}
    for jail, parameter, operator, values in statements:
        if jail not in (None, "*", name):
            continue
        if parameter.startswith("$"):
            variables[parameter.lstrip("$").strip("{}")] = values
            continue
        if values is None:
            base, truth = boolean_name(parameter)
            _check(base)
            raw[base] = truth
            continue
        _check(parameter)
        if operator == "+=" and isinstance(raw.get(parameter), list):
            raw[parameter] = raw[parameter] + values
        else:
            raw[parameter] = list(values)
    resolved = {}
    for parameter in _ordered(raw):
        value = raw[parameter]
        if isinstance(value, bool):
            resolved[parameter] = value
            continue
        substituted = [_substitute(text, kind, resolved, variables, name) for kind, text in value]
        if parameter in BOOLEAN_PARAMETERS and len(substituted) == 1:
            resolved[parameter] = substituted[0].lower() not in ("false", "0", "no")
        else:
            resolved[parameter] = substituted
    return resolved


def _ordered(raw):
    # name and path first: other parameters refer to them ($name, ${path}).
    return sorted(raw, key=lambda p: (p not in ("name", "path"), p != "name"))


def _check(parameter):
    if not known(parameter):
        raise JailConfError(f"unknown parameter: {parameter}")


_REFERENCE = re.compile(r"\$\{([^}]+)\}|\$([A-Za-z0-9_.]+)")


def _substitute(text, kind, resolved, variables, name):
    if kind == "sq":
        return text

    def replace(match):
        key = match.group(1) or match.group(2)
        if key in variables:
            return " ".join(_substitute(t, k, resolved, {}, name) for k, t in variables[key])
        if key in resolved and not isinstance(resolved[key], bool):
            return ",".join(resolved[key])
        raise JailConfError(f"{name}: {match.group(0)}: unknown parameter")

    return _REFERENCE.sub(replace, text.replace("\\\n", ""))
