"""route(8): `route -n get [-inet|-inet6] DESTINATION` and `route -n show`, read from the lab host's Linux routing
table and printed in FreeBSD's format. Changing routes is not emulated: the lab's routes come from its network."""

import json
import subprocess
import sys

from lab.freebsd import cli

USAGE = ("usage: route [-46dnqtv] command [[modifiers] args]")
GET_FORMAT = """   route to: {target}
destination: {destination}
       mask: {mask}
    gateway: {gateway}
        fib: 0
  interface: {interface}
      flags: <{flags}>
 recvpipe  sendpipe  ssthresh  rtt,msec    mtu        weight    expire
       0         0         0         0      {mtu:>4}         1         0 """


def main(argv):
    return cli.run(_main, argv)


def _routes(family):
    output = subprocess.run([cli.linux_tool("ip"), "-j", family, "route", "show"], capture_output=True, text=True,
                            check=True, timeout=10).stdout
    return json.loads(output or "[]")


def _mtu(interface):
    output = subprocess.run([cli.linux_tool("ip"), "-j", "link", "show", interface], capture_output=True, text=True,
                            timeout=10).stdout
    links = json.loads(output or "[]")
    return links[0].get("mtu", 1500) if links else 1500


def _get(args, family):
    if not args:
        print(USAGE, file=sys.stderr)
        return 64
    target = args[-1]
    if target != "default":
        print(f"route: route has not been found", file=sys.stderr)
        return 1
    default = next((route for route in _routes(family) if route.get("dst") == "default"), None)
    if default is None:
        print("route: route has not been found", file=sys.stderr)
        return 1
    flags = "UP,GATEWAY,DONE,STATIC" if default.get("gateway") else "UP,DONE,STATIC"
    print(GET_FORMAT.format(target="default", destination="default", mask="default",
                            gateway=default.get("gateway", default.get("dev")), interface=default["dev"],
                            flags=flags, mtu=_mtu(default["dev"])))
    return 0


def _main(argv):
    opts, args = cli.parse("route", argv[1:], "46dnqtv", USAGE, status=64)
    family = "-6" if ("-6", "") in opts else "-4"
    if args and args[0] in ("-inet", "-inet6"):
        family = "-6" if args[0] == "-inet6" else "-4"
        args = args[1:]
    if not args:
        print(USAGE, file=sys.stderr)
        return 64
    command, rest = args[0], args[1:]
    if rest and rest[0] in ("-inet", "-inet6"):
        family = "-6" if rest[0] == "-inet6" else "-4"
        rest = rest[1:]
    if command == "get":
        return _get(rest, family)
    if command in ("add", "delete", "change", "flush", "monitor"):
        print(f"route: {command}: not permitted in the lab", file=sys.stderr)
        return 1
    print(f"route: {command}: bad command", file=sys.stderr)
    print(USAGE, file=sys.stderr)
    return 64
