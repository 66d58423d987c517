"""newfs(8): make a UFS filesystem. Underneath it is a real ext4 filesystem (lab/freebsd/ufs.py); like the real
newfs it overwrites whatever the provider holds, without asking."""

import math
import sys

from lab.freebsd import cli, geom, mounts, ufs

USAGE = """usage: newfs [ -fsoptions ] special-device
where fsoptions are:
\t-E Erase previous disk content
\t-J Enable journaling via gjournal
\t-L volume label to add to superblock
\t-N do not create file system, just print out parameters
\t-O file system format: 1 => UFS1, 2 => UFS2
\t-R regression test, suppress random factors
\t-S sector size
\t-T disktype
\t-U enable soft updates
\t-a maximum contiguous blocks
\t-b block size
\t-c blocks per cylinders group
\t-d maximum extent size
\t-e maximum blocks per file in a cylinder group
\t-f frag size
\t-g average file size
\t-h average files per directory
\t-i number of bytes per inode
\t-j enable soft updates journaling
\t-k space to hold for metadata blocks
\t-l enable multilabel MAC
\t-n do not create .snap directory
\t-m minimum free space %
\t-o optimization preference (`space' or `time')
\t-p partition name (a..h)
\t-r reserved sectors at the end of device
\t-s file system size (sectors)
\t-t enable TRIM"""


def main(argv):
    return cli.run(_main, argv)


def _main(argv):
    opts, args = cli.parse("newfs", argv[1:], "EJL:NO:RS:T:UXa:b:c:d:e:f:g:h:i:jk:lm:no:p:r:s:t", USAGE)
    if len(args) != 1:
        print(USAGE, file=sys.stderr)
        return 1
    options = dict(opts)
    special = args[0]
    soft_updates = "-U" in options or "-j" in options
    try:
        prov = geom.provider(special)
    except geom.NoProvider:
        cli.warnx("newfs", f"{special}: could not find special device")
        return 1
    device = "/dev/" + prov["name"]
    if prov["node"] is None or mounts.find(device) is not None:
        cli.warnx("newfs", f"{special}: failed to open disk for writing")
        return 1
    print_parameters(special, prov, soft_updates, "-j" in options)
    if "-N" in options:
        return 0
    if ufs.make(prov["node"], soft_updates, options.get("-L")) != 0:
        cli.warnx("newfs", f"{special}: failed to write file system")
        return 1
    geom.last_write_close(prov["name"])
    return 0


def print_parameters(special, prov, soft_updates, journaled):
    size = prov["mediasize"] - prov["mediasize"] % ufs.FRAGMENT
    megabytes = size / 1048576
    groups = max(4, math.ceil(megabytes / 1376.31))
    group_bytes = size / groups
    sectors_per_group = int(group_bytes // 512)
    print(f"{special}: {megabytes:.1f}MB ({size // 512} sectors) block size {ufs.BLOCK}, "
          f"fragment size {ufs.FRAGMENT}")
    print(f"\tusing {groups} cylinder groups of {group_bytes / 1048576:.2f}MB, "
          f"{int(group_bytes // ufs.BLOCK)} blks, {int(group_bytes // 16384)} inodes.")
    if journaled:
        print("\twith soft updates, journaled")
    elif soft_updates:
        print("\twith soft updates")
    print("super-block backups (for fsck_ffs -b #) at:")
    backups = [str(192 + index * sectors_per_group) for index in range(groups)]
    line = ""
    for number in backups:
        piece = f" {number}"
        if len(line) + len(piece) + 1 > 79:
            print(line + ",")
            line = piece
        else:
            line = f"{line},{piece}" if line else piece
    print(line)
