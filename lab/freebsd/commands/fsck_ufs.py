"""fsck_ufs(8) (fsck_ffs): check a UFS filesystem; e2fsck checks the ext4 filesystem underneath and the
output is fsck_ffs's. Opening the provider for writing (anything but -n) counts as a writer's close for GELI
providers attached with -d, which then detach, as on FreeBSD."""

import os
import sys

from lab.freebsd import cli, fstab, geom, mounts, ufs

USAGE = "usage: fsck_ffs [-BCdEFfnpRrSyZ] [-b block] [-c level] [-m mode] filesystem ..."
EEXIT = 8
PHASES = ["** Phase 1 - Check Blocks and Sizes", "** Phase 2 - Check Pathnames", "** Phase 3 - Check Connectivity",
          "** Phase 4 - Check Reference Counts", "** Phase 5 - Check Cyl groups"]


def main(argv):
    return cli.run(_main, argv)


def _main(argv):
    prog = cli.progname(argv)
    opts, args = cli.parse(prog, argv[1:], "b:Bc:CdEfFm:npRrSyZ", USAGE, status=EEXIT)
    flags = {opt for opt, _value in opts}
    if not args:
        print(USAGE, file=sys.stderr)
        return EEXIT
    mode = "preen" if "-p" in flags else "no" if "-n" in flags else "yes"
    status = 0
    for name in args:
        status = max(status, check_one(prog, name, mode, "-f" in flags))
    return status


def fstab_device(name):
    """A mount point listed in /etc/fstab stands for its device (getfsfile(3))."""
    return next((entry["spec"] for entry in fstab.entries("/etc/fstab") if entry["file"] == name), name)


def fraction(stats, sb):
    return 100.0 * stats["frags"] / max(sb["blocks"], 1)


def clean_line(device, stats, sb):
    return (f"{device}: clean, {stats['free']} free ({stats['frags']} frags, {stats['full_blocks']} blocks, "
            f"{fraction(stats, sb):.1f}% fragmentation)")


def root_superblock():
    """The lab's root disk is not a block device: its numbers come from statvfs(2) of /."""
    info = os.statvfs("/")
    blocks = info.f_blocks * info.f_frsize // ufs.FRAGMENT
    free = info.f_bfree * info.f_frsize // ufs.FRAGMENT
    return {"inodes": info.f_files, "free_inodes": info.f_ffree, "blocks": blocks, "free_blocks": free,
            "last_mounted": "/"}


def check_one(prog, name, mode, force):
    device = fstab_device(name)
    try:
        prov = geom.provider(device)
    except geom.NoProvider:
        cli.warnx(prog, f"Can't open {device}: No such file or directory")
        return EEXIT
    device = "/dev/" + prov["name"]
    preen = mode == "preen"
    if prov["node"] is None:
        sb = root_superblock()
        status = 0
    else:
        sb = ufs.superblock(prov["node"])
        if sb is None:
            print(f"{device}: " if preen else f"** {device}\n", end="")
            print("Cannot find file system superblock")
            return EEXIT
        mounted = mounts.find(device)
        if mounted is not None and not mounted["read_only"] and mode != "no":
            print(f"** {device} (NO WRITE)" if not preen else f"{device}: MOUNTED READ-WRITE; CANNOT CHECK")
            mode = "no"
        status = ufs.check(prov["node"], mode, force)
        sb = ufs.superblock(prov["node"]) or sb
        if mode != "no":
            geom.last_write_close(prov["name"])
    stats = ufs.summary(sb)
    modified = status in (1, 2) and mode != "no"
    if status >= 4:
        if preen:
            print(f"{device}: UNEXPECTED SOFT UPDATE INCONSISTENCY; RUN fsck MANUALLY.")
        else:
            print(f"** {device}{' (NO WRITE)' if mode == 'no' else ''}")
            print("***** FILE SYSTEM STILL DIRTY *****")
        return EEXIT
    if preen:
        if not modified and not force:
            print(f"{device}: FILE SYSTEM CLEAN; SKIPPING CHECKS")
            print(clean_line(device, stats, sb))
        else:
            print(f"{device}: {stats['files']} files, {stats['used']} used, {stats['free']} free "
                  f"({stats['frags']} frags, {stats['full_blocks']} blocks, {fraction(stats, sb):.1f}% fragmentation)")
            if modified:
                print("\n***** FILE SYSTEM WAS MODIFIED *****")
        return 0
    print(f"** {device}{' (NO WRITE)' if mode == 'no' else ''}")
    if sb.get("last_mounted"):
        print(f"** Last Mounted on {sb['last_mounted']}")
    print("\n".join(PHASES))
    print(f"{stats['files']} files, {stats['used']} used, {stats['free']} free ({stats['frags']} frags, "
          f"{stats['full_blocks']} blocks, {fraction(stats, sb):.1f}% fragmentation)")
    if modified:
        print("\n***** FILE SYSTEM WAS MODIFIED *****")
    return 0
