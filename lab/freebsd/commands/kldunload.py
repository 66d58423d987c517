"""kldunload(8): unload kernel modules from the lab host's kernel state (lab/freebsd/kld.py)."""

import sys

from lab.freebsd import cli, kld

USAGE = "usage: kldunload [-fv] -i id ...\n       kldunload [-fv] [-n] name ..."


def main(argv):
    return cli.run(_main, argv)


def _main(argv):
    opts, args = cli.parse("kldunload", argv[1:], "finv", USAGE)
    flags = {opt for opt, _value in opts}
    if not args:
        print(USAGE, file=sys.stderr)
        return 1
    status = 0
    for name in args:
        try:
            if "-i" in flags:
                if not name.isdigit():
                    cli.warnx("kldunload", f"Invalid ID {name}")
                    status = 1
                    continue
                entry = next((item for item in kld.files() if item["id"] == int(name)), None)
                if entry is None:
                    cli.warnx("kldunload", f"can't find file {name}")
                    status = 1
                    continue
                label, file_id = entry["name"], entry["id"]
                kld.unload(file_id=int(name), force="-f" in flags)
            else:
                if kld.find_file(name) is None:
                    cli.warnx("kldunload", f"can't find file {name}")
                    status = 1
                    continue
                label, file_id = kld.find_file(name)["name"], kld.find_file(name)["id"]
                kld.unload(name=name, force="-f" in flags)
        except kld.KldError as error:
            cli.warnx("kldunload", f"can't unload file: {error}")
            status = 1
            continue
        if "-v" in flags:
            print(f"Unloading {label}, id={file_id}")
    return status
