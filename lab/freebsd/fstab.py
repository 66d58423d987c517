"""fstab(5) as getfsent(3) reads it, for every emulated command that reads the file (mount, fsck, swapon).

Each entry: spec, file, type (the vfstype), options (fs_mntops split at commas), kind (fs_type: the first of rw,
rq, ro, sw, xx among the options), dump and pass (numbers, 0 when absent). An entry with fewer than four fields
or without a kind is a format error: libc reports it on standard error and skips it.
"""

import os
import sys

KINDS = ("rw", "rq", "ro", "sw", "xx")


def entries(path):
    """The entries of an fstab file (none when it cannot be read, reported as libc does)."""
    found = []
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        print(f"fstab: {path}:0: {os.strerror(error.errno)}", file=sys.stderr)
        return found
    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        options = fields[3].split(",") if len(fields) >= 4 else []
        kinds = [option for option in options if option in KINDS]
        if not kinds:
            print(f"fstab: {path}:{number}: Inappropriate file type or format", file=sys.stderr)
            continue
        numbers = [int(field) if field.isdigit() else 0 for field in fields[4:6]] + [0, 0]
        found.append({"spec": fields[0], "file": fields[1], "type": fields[2], "options": options,
                      "kind": kinds[0], "dump": numbers[0], "pass": numbers[1]})
    return found
