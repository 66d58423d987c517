"""kldload(8): load kernel modules into the lab host's kernel state (lab/freebsd/kld.py)."""

import sys

from lab.freebsd import cli, kld

USAGE = "usage: kldload [-nqv] file ..."


def main(argv):
    return cli.run(_main, argv)


def _main(argv):
    opts, args = cli.parse("kldload", argv[1:], "nqv", USAGE)
    flags = {opt for opt, _value in opts}
    if not args:
        print(USAGE, file=sys.stderr)
        return 1
    status = 0
    for name in args:
        if "-n" in flags and (kld.find_file(name) is not None or kld.is_loaded(name.removesuffix(".ko"))):
            continue
        try:
            file_id = kld.load(name)
        except kld.KldError as error:
            if "-q" not in flags:
                cli.warnx("kldload", f"can't load {name}: {error}")
            status = 1
            continue
        if "-v" in flags:
            print(f"Loaded {name}, id={file_id}")
    return status
