"""freebsd-version(1): the installed kernel (-k), running kernel (-r) and userland (-u, the default) versions;
-j JAIL asks the userland of a running jail (its own /bin/freebsd-version, through jexec).

As on FreeBSD, the userland version is part of /bin/freebsd-version itself: the installed file is a launcher
(lab.freebsd.release) that passes its USERLAND_VERSION to main(). -k reads the what(1) string of the kernel
that loader.conf names (default /boot/kernel/kernel), -r asks sysctl kern.osrelease. The versions are printed
in the order kernel, running, userland, jails, whatever the order of the flags.
"""

import getopt
import os
import re
import sys

from lab.freebsd import cli, release
from lab.freebsd.userland import version

USAGE = "usage: freebsd-version [-kru] [-j jail]"
LOADER_LINE = re.compile(r'^([A-Z_a-z][0-9A-Z_a-z]*)="?([-./0-9A-Z_a-z]+)"?')


def _usage():
    print(USAGE, file=sys.stderr)
    return 1


def _kernel_file():
    values = {}
    for path in ("/boot/defaults/loader.conf", "/boot/loader.conf", "/boot/loader.conf.local"):
        try:
            with open(path) as handle:
                for line in handle:
                    match = LOADER_LINE.match(line)
                    if match:
                        values[match.group(1)] = match.group(2)
        except OSError:
            continue
    return f"/boot/{values.get('kernel', 'kernel')}/{values.get('bootfile', 'kernel')}"


def main(argv, userland=None):
    try:
        opts, args = getopt.getopt(argv[1:], "kruj:")
    except getopt.GetoptError:
        return _usage()
    if args:
        return _usage()
    flags = {opt[1] for opt, _ in opts}
    jails = [value for opt, value in opts if opt == "-j"]
    if any(not jail for jail in jails):
        print("No arg for -j option", file=sys.stderr)
        return _usage()
    if not flags:
        flags = {"u"}
    if "k" in flags:
        path = _kernel_file()
        try:
            with open(path, "rb") as handle:
                found = release.kernel_version(handle.read())
        except OSError:
            print("freebsd-version: unable to locate kernel", file=sys.stderr)
            return 1
        if found:
            print(found)
    sys.stdout.flush()
    if "r" in flags:
        status = cli.child_status(["sysctl", "-n", "kern.osrelease"])
        if status:
            return status
    if "u" in flags:
        print(userland or version.VERSION)
    sys.stdout.flush()
    for jail in jails:
        status = cli.child_status(["jexec", "--", jail, "freebsd-version"])
        if status:
            return status
    return 0
