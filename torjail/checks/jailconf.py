"""Syntax and sanity check of a jail.conf(5) file, before it reaches /etc/jail.conf.d/.

A jail.conf that jail(8) cannot read leaves the relay down after the operator unlocks it, so every generated one
is parsed here with the grammar of jail.conf(5): blocks, parameters, `=`/`+=`, quoted strings, comments.
Parameter names are checked against those jail(8) knows and values against their type.
"""

import ipaddress
import re

from lark import Transformer, exceptions

from torjail.checks import parsers

GRAMMAR = r"""
    start: (param | jail)*
    jail: NAME "{" param* "}"
    param: NAME (OP value ("," value)*)? ";"
    OP: "+=" | "="
    value: STRING | WORD
    NAME: /[A-Za-z0-9_*][A-Za-z0-9_.-]*/
    STRING: /"([^"\\\n]|\\.)*"/ | /'[^'\n]*'/
    WORD: /[^\s;,"'{}=#]+/
    COMMENT: /#[^\n]*/ | /\/\/[^\n]*/ | /\/\*(.|\n)*?\*\//
    %import common.WS
    %ignore WS
    %ignore COMMENT
"""
_PARSER = parsers.lalr("jail.conf", GRAMMAR)

INTEGER_PARAMS = {
    "securelevel": (-1, 3), "enforce_statfs": (0, 2), "children.max": (0, 1 << 30),
    "devfs_ruleset": (0, 65535), "jid": (1, 1 << 30),
}
STRING_PARAMS = {
    "path", "host.hostname", "ip4.addr", "ip6.addr", "mount", "mount.fstab", "exec.start", "exec.stop",
    "exec.prestart", "exec.poststart", "exec.prestop", "exec.poststop", "exec.consolelog", "exec.jail_user",
    "exec.system_user", "exec.timeout", "exec.fib", "interface", "name", "host.domainname", "host.hostuuid",
    "osrelease", "osreldate", "ip4", "ip6", "stop.timeout", "depend",
}
BOOLEAN_PARAMS = {
    "persist", "nopersist", "mount.devfs", "mount.fdescfs", "mount.procfs", "exec.clean", "vnet", "ip_hostname",
    "allow.set_hostname", "allow.sysvipc", "allow.raw_sockets", "allow.chflags", "allow.mount", "allow.quotas",
    "allow.socket_af", "allow.mlock", "allow.reserved_ports", "allow.read_msgbuf", "allow.unprivileged_proc_debug",
    "allow.suser", "allow.nfsd",
}
# System V IPC: libjail's "jailsys" type, one of three words (or their numbers).
JAILSYS_PARAMS = {"sysvmsg", "sysvsem", "sysvshm"}
JAILSYS_VALUES = ("disable", "new", "inherit", "0", "1", "2")


class _Collect(Transformer):
    def value(self, items):
        token = items[0]
        text = str(token)
        return text[1:-1] if token.type == "STRING" else text

    def param(self, items):
        name = str(items[0])
        values = [item for item in items[2:]] if len(items) > 1 else []
        return (name, values, items[0].line)

    def jail(self, items):
        return ("jail", str(items[0]), items[1:])

    def start(self, items):
        return items


def _check_param(name, values, line):
    problems = []
    prefix, dot, last = name.rpartition(".")
    if last.startswith("no") and f"{prefix}{dot}{last[2:]}" in BOOLEAN_PARAMS:  # "no" on the last component
        name = f"{prefix}{dot}{last[2:]}"
        if values:
            problems.append(f"line {line}: {name}: a negated boolean takes no value")
    if name in INTEGER_PARAMS:
        low, high = INTEGER_PARAMS[name]
        if len(values) != 1 or not re.fullmatch(r"-?[0-9]+", values[0]) or not low <= int(values[0]) <= high:
            problems.append(f"line {line}: {name} expects a whole number {low}..{high}")
    elif name in BOOLEAN_PARAMS:
        if values and values[0] not in ("true", "false", "1", "0"):
            problems.append(f"line {line}: {name} is a boolean parameter")
    elif name in JAILSYS_PARAMS:
        if len(values) != 1 or values[0] not in JAILSYS_VALUES:
            problems.append(f"line {line}: {name} expects disable, new or inherit")
    elif name in STRING_PARAMS:
        if not values:
            problems.append(f"line {line}: {name} needs a value")
        for value in values if name in ("ip4.addr", "ip6.addr") else []:
            address = value.split("|", 1)[-1].split("/", 1)[0]
            try:
                ipaddress.ip_address(address)
            except ValueError:
                problems.append(f"line {line}: {name} has an invalid address {value!r}")
    else:
        problems.append(f"line {line}: unknown parameter: {name}")
    return problems


def check_jail_conf(text):
    """Return the problems of a jail.conf text (empty when jail(8) would read it)."""
    try:
        tree = _PARSER.parse(text)
    except exceptions.UnexpectedInput as error:
        return [f"line {error.line}: syntax error near {text.splitlines()[error.line - 1].strip()!r}"]
    problems = []
    for statement in _Collect().transform(tree):
        if statement[0] == "jail":
            _, jail_name, params = statement
            names = {param[0] for param in params}
            if "path" not in names:
                problems.append(f"jail {jail_name}: missing path")
            for name, values, line in params:
                problems += _check_param(name, values, line)
        else:
            problems += _check_param(*statement)
    return problems
