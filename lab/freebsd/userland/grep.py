"""grep(1) of FreeBSD: BSD grep's options; no -P (Perl regular expressions are a GNU extension):
"grep: illegal option -- P", usage, exit status 2. The search itself is GNU grep's."""

import sys

from lab.freebsd.userland.gnu import exec_gnu

USAGE = ("usage: grep [-abcdDEFGHhIiLlmnOopqRSsUVvwxz] [-A num] [-B num] [-C[num]]\n"
         "\t[-e pattern] [-f file] [--binary-files=value] [--color=when]\n"
         "\t[--context[=num]] [--directories=action] [--label] [--line-buffered]\n"
         "\t[--null] [pattern] [file ...]")
GNU_ONLY_LONG = ("--perl-regexp",)
WITH_ARGUMENT = set("ABCefmd")


def refused(argv):
    """The first option FreeBSD's grep would refuse, or None."""
    for arg in argv:
        if arg == "--":
            return None
        if arg.startswith("--"):
            if arg.split("=", 1)[0] in GNU_ONLY_LONG:
                return arg
            continue
        if arg.startswith("-") and len(arg) > 1:
            for position, char in enumerate(arg[1:]):
                if char == "P":
                    return "P"
                if char in WITH_ARGUMENT:
                    break
    return None


def main(argv):
    option = refused(argv[1:])
    if option is not None:
        if option.startswith("--"):
            print(f"grep: unrecognized option `{option}'", file=sys.stderr)
        else:
            print(f"grep: illegal option -- {option}", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2
    name = {"egrep": ["-E"], "fgrep": ["-F"]}.get(argv[0].rsplit("/", 1)[-1], [])
    exec_gnu("grep", name + argv[1:])
