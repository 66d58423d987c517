"""freebsd-version(1): the installed kernel (-k), running kernel (-r) and userland (-u, the default) versions;
-j JAIL asks the userland of a running jail."""

import getopt
import subprocess
import sys

from lab.freebsd.userland import version

USAGE = "usage: freebsd-version [-kru] [-j jail]"


def main(argv):
    try:
        opts, args = getopt.getopt(argv[1:], "kruj:")
    except getopt.GetoptError:
        print(USAGE, file=sys.stderr)
        return 1
    if args:
        print(USAGE, file=sys.stderr)
        return 1
    if not opts:
        opts = [("-u", "")]
    status = 0
    for opt, value in opts:
        if opt in ("-k", "-r", "-u"):
            print(version.VERSION)
        else:
            result = subprocess.run(["jexec", value, "freebsd-version", "-u"])
            status = status or (1 if result.returncode else 0)
    return status
