"""umount(8): unmount by mount point or device. Unmounting a filesystem that was mounted read-write is the
last writer's close of its provider: a GELI provider attached with -d detaches then, as on FreeBSD."""

import os
import sys

from lab.freebsd import cli, geom, mounts

USAGE = """usage: umount [-dfNnrv] {special ... | node ... | fsid ...}
       umount -a | -A [-F fstab] [-fnrv] [-h host] [-t type]"""


def main(argv):
    return cli.run(_main, argv)


def _main(argv):
    opts, args = cli.parse("umount", argv[1:], "AaF:dfh:Nnrt:v", USAGE)
    flags = {opt for opt, _value in opts}
    force = "-f" in flags
    if "-a" in flags or "-A" in flags:
        targets = [entry["mountpoint"] for entry in mounts.table()
                   if entry["mountpoint"] != "/" and entry["fstype"] == "ufs"]
        targets.sort(key=len, reverse=True)
    elif args:
        targets = args
    else:
        print(USAGE, file=sys.stderr)
        return 1
    status = 0
    for target in targets:
        status |= unmount_one(target, force, "-v" in flags)
    return status


def unmount_one(target, force, verbose):
    path = os.path.realpath(target) if os.path.exists(target) else target
    entry = mounts.find(path)
    if entry is None and target.startswith("/dev/"):
        cli.warnx("umount", f"{target}: unknown file system")
        return 1
    if entry is None:
        if os.path.exists(target):
            cli.warnx("umount", f"{target}: not a file system root directory")
        else:
            cli.warnx("umount", f"{target}: statfs: No such file or directory")
        return 1
    try:
        mounts.unmount(entry["mountpoint"], mounts.MNT_DETACH if force else 0)
    except OSError as error:
        cli.warnx("umount", f"unmount of {entry['mountpoint']} failed: {error.strerror}")
        return 1
    if verbose:
        print(f"{entry['device']}: unmount from {entry['mountpoint']}")
    if entry["fstype"] == "ufs" and not entry["read_only"]:
        geom.last_write_close(entry["device"])
    return 0
