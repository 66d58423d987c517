"""fsck(8): the front end that finds each filesystem's type (from -t, /etc/fstab or the disk) and runs
fsck_TYPE as a separate program, as FreeBSD's does. Without operands it checks every fstab entry with a
non-zero pass number."""

import subprocess
import sys

from lab.freebsd import cli, geom, ufs
from lab.freebsd.fstab import entries as fstab_entries

USAGE = """usage: fsck [-dfnpvy] [-B | -F] [-T fstype:fsoptions] [-t fstype] [-c fstab]
\t[special | node ...]"""
PASSED_FLAGS = {"-f", "-n", "-p", "-y", "-B", "-F", "-C", "-d"}


def main(argv):
    return cli.run(_main, argv)


def disk_type(special):
    try:
        prov = geom.provider(special)
    except geom.NoProvider:
        return None
    if prov["node"] is None or ufs.superblock(prov["node"]) is not None:
        return "ufs"
    return None


def _main(argv):
    opts, args = cli.parse("fsck", argv[1:], "BCdvpfFnyl:t:T:c:", USAGE)
    passed = [opt for opt, _value in opts if opt in PASSED_FLAGS]
    forced_type = None
    fstab = "/etc/fstab"
    for opt, value in opts:
        if opt == "-t":
            forced_type = value.removeprefix("no")
        elif opt == "-c":
            fstab = value
    entries = fstab_entries(fstab)
    targets = []
    if args:
        for name in args:
            entry = next((item for item in entries if name in (item["spec"], item["file"])), None)
            special = entry["spec"] if entry else name
            fstype = forced_type or (entry["type"] if entry else disk_type(special))
            if fstype is None:
                cli.warnx("fsck", "Could not determine filesystem type")
                return 1
            targets.append((special, fstype))
    else:
        targets = [(item["spec"], item["type"]) for item in sorted(entries, key=lambda item: item["pass"])
                   if item["pass"] > 0 and (forced_type is None or item["type"] == forced_type)]
    status = 0
    for special, fstype in targets:
        if fstype != "ufs":
            cli.warnx("fsck", f"exec fsck_{fstype} for {special} in /sbin:/usr/sbin: No such file or directory")
            status |= 8
            continue
        result = subprocess.run(["/sbin/fsck_ufs", *passed, special])
        status |= result.returncode
    return status
