"""dumpon(8): choose the kernel crash dump device (kernel state "dump"). GELI providers cannot take dumps."""

import sys

from lab.freebsd import cli, geom, kernel

USAGE = """usage: dumpon [-i index] [-r] [-v] [-k <pubkey>] [-Zz] <device>
       dumpon [-i index] [-r] [-v] [-k <pubkey>] [-Zz]
              [-g <gateway>] -s <server> -c <client> <iface>
       dumpon [-v] off
       dumpon [-v] -l"""


def main(argv):
    return cli.run(_main, argv)


def current():
    return kernel.read("dump", {}).get("device", "")


def _main(argv):
    opts, args = cli.parse("dumpon", argv[1:], "C:c:g:i:k:lrs:vZz", USAGE, status=cli.EX_USAGE)
    flags = {opt for opt, _value in opts}
    verbose = "-v" in flags
    if "-l" in flags:
        if args:
            print(USAGE, file=sys.stderr)
            return cli.EX_USAGE
        print(current() or "/dev/null")
        return 0
    if len(args) != 1:
        print(USAGE, file=sys.stderr)
        return cli.EX_USAGE
    target = args[0]
    if target == "off":
        with kernel.update("dump", {}) as state:
            state["device"] = ""
        if verbose:
            print("kernel dumps disabled")
        return 0
    name = geom.short_name(target)
    try:
        geom.provider(name)
    except geom.NoProvider:
        print(f"dumpon: {target}: No such file or directory", file=sys.stderr)
        return cli.EX_OSERR
    if name.endswith(".eli"):
        print("dumpon: ioctl(DIOCSKERNELDUMP): Operation not supported by device", file=sys.stderr)
        return cli.EX_OSERR
    with kernel.update("dump", {}) as state:
        state["device"] = name
    if verbose:
        print(f"kernel dumps on /dev/{name}")
    return 0
