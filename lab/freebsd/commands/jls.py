"""jls(8): list running jails in jls's formats (plain, -N, -v, -n, named parameters, `--libxo json`).

Row formats are jls.c's printf formats; a parameter listing (-n) prints every kernel parameter of a jail as
name=value (booleans as name / noname); -q quotes values that need it.
"""

import json
import sys

from lab.freebsd import cli, jailconf, jails

USAGE = "usage: jls [-dhNnqv] [-j jail] [param ...]"
OSRELEASE = "14.3-RELEASE"
OSRELDATE = "1403000"


def _jailsys(value):
    """libjail prints a jailsys parameter by name whether it was given by name or number."""
    return {"0": "disable", "1": "new", "2": "inherit"}.get(value, value)


def kernel_parameters(jail):
    """Every kernel parameter of a jail with its value, as jls -n reports them."""
    given = jail["parameters"]

    def value(key, default):
        found = given.get(key)
        if isinstance(found, list):
            return ",".join(found) if found else default
        return default if found is None else found

    params = {
        "devfs_ruleset": value("devfs_ruleset", "0"), "dying": False,
        "enforce_statfs": value("enforce_statfs", "2"), "host": "new",
        "ip4": "new" if jail["ip4"] else "disable", "ip6": "new" if jail["ip6"] else "disable",
        "jid": str(jail["jid"]), "name": jail["name"], "osreldate": OSRELDATE, "osrelease": OSRELEASE,
        "parent": "0", "path": jail["path"], "persist": given.get("persist") is True,
        "securelevel": value("securelevel", "-1"), "sysvmsg": _jailsys(value("sysvmsg", "disable")),
        "sysvsem": _jailsys(value("sysvsem", "disable")), "sysvshm": _jailsys(value("sysvshm", "disable")),
        "vnet": "inherit",
    }
    for allow in sorted(jailconf.ALLOW_PARAMETERS):
        key = f"allow.{allow}"
        default = allow in ("set_hostname", "reserved_ports", "suser")
        params[key] = given.get(key) if isinstance(given.get(key), bool) else default
    params.update({
        "children.cur": "0", "children.max": value("children.max", "0"), "cpuset.id": str(jail["jid"] + 1),
        "host.domainname": value("host.domainname", ""), "host.hostid": "0", "host.hostname": jail["hostname"],
        "host.hostuuid": "00000000-0000-0000-0000-000000000000", "ip4.addr": ",".join(jail["ip4"]),
        "ip4.saddrsel": True, "ip6.addr": ",".join(jail["ip6"]), "ip6.saddrsel": True,
        "meta": "", "env": "",
    })
    return params


def _text(name, value, quoted=False):
    """One parameter as jls prints it: booleans as name/noname; with -q, values quoted as jls.c quotes them
    (empty or holding a single quote: double quotes; holding blanks or shell characters: single quotes)."""
    if value is True:
        return name
    if value is False:
        head, _, tail = name.rpartition(".")
        return f"{head}.no{tail}" if head else f"no{name}"
    if quoted and (value == "" or "'" in value):
        value = f'"{value}"'
    elif quoted and any(c in value for c in " \t\"$`"):
        value = f"'{value}'"
    return f"{name}={value}" if name else value


def _json_value(value):
    if isinstance(value, bool) or not isinstance(value, str):
        return value
    return int(value) if value.lstrip("-").isdigit() else value


def main(argv):
    args = list(argv[1:])
    xo_json = False
    if args and args[0] in ("--libxo", "--libxo=json", "--libxo=json,pretty") or (
            args and args[0].startswith("--libxo=")):
        style = args.pop(0)
        if style == "--libxo":
            style = args.pop(0) if args else ""
        xo_json = "json" in style
    try:
        options, params = cli.parse("jls", args, "dhj:Nnqsv", USAGE)
    except cli.UsageError as error:
        return error.status
    flags = {letter[1] for letter, _ in options}
    selected = jails.running()
    only = next((value for letter, value in options if letter == "-j"), None)
    if only is not None:
        jail = jails.find(only)
        if jail is None:
            cli.warnx("jls", f'jail "{only}" not found')
            return 1
        selected = [jail]
    for param in params:
        if not jailconf.known(param):
            cli.warnx("jls", f"unknown parameter: {param}")
            return 1
    if xo_json:
        return _json(selected, flags, params)
    if "n" in flags or params or "h" in flags:
        if "h" in flags and "n" not in flags:
            # -h: a header line naming the parameters (all of them when none is given), then their values.
            names = params or [k for k, _ in _ordered(kernel_parameters(selected[0]))] if (params or selected) else []
            print(" ".join(names))
            params = names
        for jail in selected:
            values = kernel_parameters(jail)
            if params and "n" not in flags:
                words = [_text("", _plain(values.get(p, "")), "q" in flags) for p in params]
            else:
                words = [_text(k, values.get(k, ""), "q" in flags)
                         for k in params or [k for k, _ in _ordered(values)]]
            print(" ".join(words))
        return 0
    if "v" in flags:
        print(f"{'JID':>6s}  {'Hostname':<29s} Path")
        print(f"        {'Name':<29s} State")
        print("        CPUSetID")
        print("        IP Address(es)")
        for jail in selected:
            print(f"{jail['jid']:6d}  {jail['hostname']:<29.29s} {jail['path']:.74s}")
            print(f"        {jail['name']:<29.29s} ACTIVE")
            print(f"        {jail['jid'] + 1:<6d}")
            for address in jail["ip4"] + jail["ip6"]:
                print(f"        {address}")
        return 0
    if "N" in flags:
        print(f" {'JID':<15s}  {'IP Address':<15s} {'Hostname':<29s} Path")
    else:
        print(f"{'JID':>6s}  {'IP Address':<15s} {'Hostname':<29s} Path")
    for jail in selected:
        address = (jail["ip4"] + jail["ip6"] + ["-"])[0]
        if "N" in flags:
            print(f" {jail['name']:<15s}  {address:<15.15s} {jail['hostname']:<29.29s} {jail['path']:.74s}")
        else:
            print(f"{jail['jid']:6d}  {address:<15.15s} {jail['hostname']:<29.29s} {jail['path']:.74s}")
    return 0


def _plain(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _ordered(values):
    return sorted(values.items(), key=lambda item: ("." in item[0], item[0]))


def _json(selected, flags, params):
    entries = []
    for jail in selected:
        if "n" in flags or params:
            values = kernel_parameters(jail)
            keys = params or [k for k, _ in _ordered(values)]
            entries.append({k: _json_value(values.get(k, "")) for k in keys})
        else:
            entries.append({"jid": jail["jid"], "ipv4": (jail["ip4"] + [""])[0], "hostname": jail["hostname"],
                            "path": jail["path"]})
    body = ",".join(json.dumps(entry, separators=(",", ":")) for entry in entries)
    sys.stdout.write('{"__version": "2", "jail-information": {"jail": [' + body + "]}}\n")
    return 0
