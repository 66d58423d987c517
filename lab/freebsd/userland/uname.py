"""uname(1) of FreeBSD: -s FreeBSD, -r the running kernel's release (kern.osrelease, e.g. 14.3-RELEASE-p4),
-m amd64, and FreeBSD's flags (-a -b -i -K -m -n -o -p -r -s -U -v). As FreeBSD's uname does, a variable
UNAME_x in the environment replaces field x (freebsd-update --currently-running relies on UNAME_r)."""

import getopt
import os
import sys

from lab.freebsd import sysctls
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
    running = sysctls.get("kern.osrelease")
    values = {
        "s": "FreeBSD", "o": "FreeBSD", "n": os.uname().nodename, "r": running,
        "v": f"FreeBSD {running} {version.KERNEL_IDENT}", "m": version.MACHINE, "p": version.MACHINE,
        "i": version.KERNEL_IDENT, "K": str(version.OSRELDATE), "U": str(version.OSRELDATE),
        "b": "0" * 40,
    }
    for letter in values:
        if os.environ.get(f"UNAME_{letter}") is not None:
            values[letter] = os.environ[f"UNAME_{letter}"]
    # FreeBSD prints the fields in this fixed order, whatever the order of the flags.
    print(" ".join(values[f] for f in "sonrvmpiKUb" if f in flags))
    return 0
