"""rcorder(8): print rc.d scripts in dependency order (lab/freebsd/rcorder.py)."""

import sys

from lab.freebsd import cli, rcorder

USAGE = "usage: rcorder [-gp] [-k keep] [-s skip] file ..."


def main(argv):
    return cli.run(_main, argv)


def _main(argv):
    opts, args = cli.parse("rcorder", argv[1:], "dgk:ps:", USAGE)
    if not args:
        print(USAGE, file=sys.stderr)
        return 1
    keep = [value for opt, value in opts if opt == "-k"]
    skip = [value for opt, value in opts if opt == "-s"]
    for path in rcorder.order(args, keep, skip, warn=lambda text: cli.warnx("rcorder", text)):
        print(path)
    return 0
