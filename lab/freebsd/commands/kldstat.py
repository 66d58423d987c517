"""kldstat(8): list the files loaded in the lab host's kernel state, or query a module (-q -m NAME)."""

import sys

from lab.freebsd import cli, kld

USAGE = "usage: kldstat [-dhqv] [-i id] [-n filename]\n       kldstat [-dq] [-m modname]"
POINTER_WIDTH = 18


def main(argv):
    return cli.run(_main, argv)


def file_line(entry, verbose, humanized):
    size = "%8s" % cli.humanize(entry["size"], 5) if humanized else "%8x" % entry["size"]
    line = "%2d %4d 0x%016x %s %s" % (entry["id"], entry["refs"], entry["address"], size, entry["name"])
    if not verbose:
        return line
    lines = [f"{line} ({entry.get('path', '/boot/kernel/kernel')})", "\tContains modules:",
             "\t\t Id Name"]
    for module in entry["modules"]:
        lines.append("\t\t%3d %s" % (kld.find_module(module)[1], module))
    return "\n".join(lines)


def _main(argv):
    opts, args = cli.parse("kldstat", argv[1:], "dhi:m:n:qv", USAGE)
    if args:
        print(USAGE, file=sys.stderr)
        return 1
    options = dict(opts)
    quiet = "-q" in options
    if "-m" in options:
        found = kld.find_module(options["-m"])
        if found is None:
            if not quiet:
                cli.warnx("kldstat", f"can't find module {options['-m']}: No such file or directory")
            return 1
        if not quiet:
            entry, module_id = found
            print("Id  Refs Name")
            print("%3d %4d %s" % (module_id, 1, options["-m"]))
        return 0
    entries = kld.files()
    if "-n" in options:
        entry = kld.find_file(options["-n"])
        if entry is None:
            if not quiet:
                cli.warnx("kldstat", f"can't find file {options['-n']}: No such file or directory")
            return 1
        entries = [entry]
    elif "-i" in options:
        entries = [entry for entry in entries if str(entry["id"]) == options["-i"]]
        if not entries:
            cli.warnx("kldstat", f"can't stat file id {options['-i']}: No such file or directory")
            return 1
    if quiet:
        return 0
    print("Id Refs Address%*c %8s Name" % (POINTER_WIDTH - 7, " ", "Size"))
    for entry in entries:
        print(file_line(entry, "-v" in options, "-h" in options))
    return 0
