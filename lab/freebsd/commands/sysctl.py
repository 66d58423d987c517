"""sysctl(8): read and write kernel variables of the lab host (lab/freebsd/sysctls.py)."""

import sys

from lab.freebsd import cli, sysctls

USAGE = """usage: sysctl [-bdeFhiJNnoqTtWx] [ -B <bufsize> ] [-f filename] name[=value] ...
       sysctl [-bdeFhJNnoqTtWx] [ -B <bufsize> ] -a"""


def main(argv):
    return cli.run(_main, argv)


def _main(argv):
    opts, args = cli.parse("sysctl", argv[1:], "AabB:def:FhiJNnoqtTwWxX", USAGE)
    flags = {opt for opt, _value in opts}
    files = [value for opt, value in opts if opt == "-f"]
    status = 0
    for path in files:
        status |= apply_file(path, flags)
    if "-a" in flags or "-A" in flags or "-X" in flags:
        args = args or [""]
    elif not args and not files:
        print(USAGE, file=sys.stderr)
        return 1
    for arg in args:
        status |= handle(arg, flags)
    return status


def show(name, flags):
    value = sysctls.get(name)
    if "-N" in flags:
        print(name)
    elif "-n" in flags:
        print(value)
    elif "-e" in flags:
        print(f"{name}={value}")
    else:
        print(f"{name}: {value}")


def handle(arg, flags):
    name, sep, value = arg.partition("=")
    known = sysctls.names(name)
    if not known:
        if "-i" not in flags:
            if "-q" not in flags:
                cli.warnx("sysctl", f"unknown oid '{name}'")
            return 1
        return 0
    if not sep:
        for oid in known:
            show(oid, flags)
        return 0
    if len(known) != 1 or known[0] != name:
        cli.warnx("sysctl", f"oid '{name}' isn't a leaf node")
        return 1
    try:
        old = sysctls.set_value(name, value)
    except sysctls.SysctlError as error:
        cli.warnx("sysctl", str(error))
        return 1
    if "-q" in flags:
        return 0
    if "-n" in flags:
        print(f"{old} -> {sysctls.get(name)}")
    else:
        print(f"{name}: {old} -> {sysctls.get(name)}")
    return 0


def apply_file(path, flags):
    """-f FILE: name=value lines, # comments, as /etc/sysctl.conf."""
    try:
        with open(path) as conf:
            lines = conf.readlines()
    except OSError as error:
        cli.warnx("sysctl", f"{path}: {error.strerror}")
        return 1
    status = 0
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            cli.warnx("sysctl", f"{path}:{number}: Can't parse: {line}")
            status = 1
            continue
        name, value = (part.strip() for part in line.split("=", 1))
        status |= handle(f"{name}={value.strip(chr(34))}", flags)
    return status
