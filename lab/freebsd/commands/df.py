"""df(1): free space of the mounted filesystems, as FreeBSD's bin/df/df.c prints it.

The numbers are the real ones (statvfs(2) of each mount point); the names are FreeBSD's, from the lab's mount
table (the lab root shows as /dev/vtbd0p2, an image's filesystem as /dev/mdN.eli). Columns are sized to the
widest value, the block header comes from getbsize(3) (BLOCKSIZE, -k, -m, -g, -b/-P), Avail can be negative,
and a path that does not exist is an error naming it (exit 1). SI units (-H, and -h with -i) are not emulated.
"""

import os
import sys

from lab.freebsd import cli, mounts

USAGE = ("usage: df [-b | -g | -H | -h | -k | -m | -P] [-acilnT] [-t type] [-,] "
         "[file | filesystem ...]")
UNITS = {"k": ("K", 2**10), "m": ("M", 2**20), "g": ("G", 2**30)}


def main(argv):
    return cli.run(_main, argv)


def _main(argv):
    opts, args = cli.parse("df", argv[1:], "abcgHhiklmnPt:T,", USAGE, status=cli.EX_USAGE)
    human = inodes = total = with_type = thousands = False
    kflag = False
    vfslist = None
    for opt, value in opts:
        if opt in ("-b", "-P"):
            if not kflag:
                os.environ["BLOCKSIZE"] = "512"
                human = False
        elif opt == "-k":
            kflag = True
            os.environ["BLOCKSIZE"] = "1024"
            human = False
        elif opt == "-m":
            os.environ["BLOCKSIZE"] = "1m"
            human = False
        elif opt == "-g":
            os.environ["BLOCKSIZE"] = "1g"
            human = False
        elif opt == "-h":
            human = True
        elif opt == "-H":
            cli.warnx("df", "-H (SI units) is not emulated by the lab")
            return 1
        elif opt == "-i":
            inodes = True
        elif opt == "-c":
            total = True
        elif opt == "-T":
            with_type = True
        elif opt == "-,":
            thousands = True
        elif opt == "-t":
            if vfslist is not None:
                cli.warnx("df", "only one -t option may be specified")
                return 1
            vfslist = value
    if human and inodes:
        cli.warnx("df", "-h with -i (inode counts in SI units) is not emulated by the lab")
        return 1
    table = mounts.table()
    status = 0
    if args:
        selected = []
        for name in args:
            entry = _filesystem_of(name, table)
            if entry is None:
                print(f"df: {name}: No such file or directory", file=sys.stderr)
                status = 1
            elif not _type_selected(entry["fstype"], vfslist):
                status = 1
            else:
                selected.append(entry)
    else:
        selected = [entry for entry in table if _type_selected(entry["fstype"], vfslist)]
    rows = []
    for entry in selected:
        stats = os.statvfs(entry["mountpoint"])
        rows.append({"from": entry["device"], "type": entry["fstype"], "on": entry["mountpoint"],
                     "bsize": stats.f_frsize, "blocks": stats.f_blocks, "bfree": stats.f_bfree,
                     "bavail": stats.f_bavail, "files": stats.f_files, "ffree": stats.f_ffree})
    if total and rows:
        rows.append(_total(rows))
    header, blocksize = getbsize()
    _print(rows, header, blocksize, human, inodes, with_type, thousands)
    return status


def _filesystem_of(name, table):
    """The mount holding `name` (a path: the longest mount point above it), or the one mounted from a device."""
    if not os.path.exists(name):
        return next((entry for entry in table if entry["device"] == name), None)
    path = os.path.realpath(name)
    if not os.path.isdir(path) and name.startswith("/dev/"):
        mounted = next((entry for entry in table if entry["device"] == name), None)
        if mounted is not None:
            return mounted
    above = [entry for entry in table
             if path == entry["mountpoint"] or path.startswith(entry["mountpoint"].rstrip("/") + "/")]
    return max(above, key=lambda entry: len(entry["mountpoint"]), default=None)


def _type_selected(fstype, vfslist):
    if vfslist is None:
        return True
    negate = vfslist.startswith("no")
    names = (vfslist[2:] if negate else vfslist).split(",")
    return (fstype in names) != negate


def _total(rows):
    result = {"from": "total", "type": "", "on": "", "bsize": 512, "files": 0, "ffree": 0}
    for key in ("blocks", "bfree", "bavail"):
        result[key] = sum(row[key] * row["bsize"] // 512 for row in rows)
    for key in ("files", "ffree"):
        result[key] = sum(row[key] for row in rows)
    return result


def getbsize():
    """getbsize(3): the header ("1024-blocks") and block size from BLOCKSIZE; 512 without it."""
    value = os.environ.get("BLOCKSIZE", "")
    if not value:
        return "512-blocks", 512
    digits = value.rstrip("kKmMgG")
    suffix = value[len(digits):].lower()
    number = int(digits) if digits.isdigit() else 0
    number = number or 1
    form, multiplier = UNITS.get(suffix, ("", 1))
    if len(suffix) > 1:
        print(f"df: {value}: unknown blocksize", file=sys.stderr)
        form, multiplier, number = "", 1, 512
    if number * multiplier < 512:
        print("df: minimum blocksize is 512", file=sys.stderr)
        form, multiplier, number = "", 1, 512
    return f"{number}{form}-blocks", number * multiplier


def _blocks(number, fsbsize, blocksize):
    """fsbtoblk(): filesystem blocks in units of blocksize, truncating as C's integer division does."""
    if fsbsize and fsbsize < blocksize:
        step = blocksize // fsbsize
        return -(-number // step) if number < 0 else number // step
    return number * (fsbsize // blocksize)


def _number(value, thousands):
    return f"{value:,}" if thousands else str(value)


def _print(rows, header, blocksize, human, inodes, with_type, thousands):
    if not rows:
        return
    for row in rows:
        row["used"] = row["blocks"] - row["bfree"]
        row["iused"] = row["files"] - row["ffree"]
        row["cells"] = [_number(_blocks(row[key], row["bsize"], blocksize), thousands)
                        for key in ("blocks", "used", "bavail")]
    source = max(len("Filesystem"), *(len(row["from"]) for row in rows))
    kind = max(len("Type"), *(len(row["type"]) for row in rows))
    if human:
        header = "   Size"
        widths = [len(header), len(header), len(header)]
    else:
        widths = [max(len(header), *(len(row["cells"][0]) for row in rows)),
                  max(len("Used"), *(len(row["cells"][1]) for row in rows)),
                  max(len("Avail"), *(len(row["cells"][2]) for row in rows))]
    iused = max(len("  iused"), 0 if human else max(len(_number(row["iused"], thousands)) for row in rows))
    ifree = max(len("ifree"), 0 if human else max(len(_number(row["ffree"], thousands)) for row in rows))
    line = f"{'Filesystem':<{source}}"
    if with_type:
        line += f"  {'Type':<{kind}}"
    line += f" {header:>{widths[0]}} {'Used':>{widths[1]}} {'Avail':>{widths[2]}} Capacity"
    if inodes:
        line += f" {'iused':>{iused - 2}} {'ifree':>{ifree}} %iused"
    print(line + "  Mounted on")
    for row in rows:
        line = f"{row['from']:<{source}}"
        if with_type:
            line += f"  {row['type']:<{kind}}"
        if human:
            for key in ("blocks", "used", "bavail"):
                value = row[key] * row["bsize"]
                line += f"  {cli.humanize(value, 6 if value < 0 else 5):>6}"
        else:
            line += "".join(f" {cell:>{width}}" for cell, width in zip(row["cells"], widths))
        available = row["bavail"] + row["used"]
        line += " %5.0f%%" % (100.0 if available == 0 else row["used"] / available * 100.0)
        if inodes:
            line += f" {_number(row['iused'], thousands):>{iused}} {_number(row['ffree'], thousands):>{ifree}}"
            line += " %4.0f%% " % (100.0 if row["files"] == 0 else row["iused"] / row["files"] * 100.0)
        else:
            line += "  "
        if row["from"] != "total":
            line += f"  {row['on']}"
        print(line)
