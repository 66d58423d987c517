"""uname(1) of FreeBSD: -s FreeBSD, -r 14.3-RELEASE-p4, -m amd64, and FreeBSD's flags (-a -b -i -K -m -n -o -p -r -s -U -v)."""

import getopt
import os
import sys

from lab.freebsd.userland import version

USAGE = "usage: uname [-abiKmnoprsUv]"


def main(argv):
    try:
        opts, args = getopt.getopt(argv[1:], "abiKmnoprsUv")
    except getopt.GetoptError as err:
        print(f"uname: illegal option -- {err.opt}", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 1
    if args:
        print(USAGE, file=sys.stderr)
        return 1
    flags = {opt[1] for opt, _ in opts}
    if "a" in flags:
        flags |= set("snrvm")
    if not flags:
        flags = {"s"}
    values = {
        "s": "FreeBSD", "o": "FreeBSD", "n": os.uname().nodename, "r": version.VERSION,
        "v": f"FreeBSD {version.VERSION} {version.KERNEL_IDENT}", "m": version.MACHINE, "p": version.MACHINE,
        "i": version.KERNEL_IDENT, "K": str(version.OSRELDATE), "U": str(version.OSRELDATE),
        "b": "0" * 40,
    }
    # FreeBSD prints the fields in this fixed order, whatever the order of the flags.
    print(" ".join(values[f] for f in "sonrvmpiKUb" if f in flags))
    return 0
