"""mount(8): mount filesystems and list them as FreeBSD does (plain, -p, --libxo json).

ufs mounts the ext4 filesystem of an md unit or GELI provider (mount(2) on /dev/mdN[.eli]), devfs is a small
tmpfs with the standard nodes, tmpfs is tmpfs, nullfs is a bind mount. The listing comes from
lab/freebsd/mounts.py, so it shows every mount of the lab host, whoever made it.
"""

import json
import os
import sys

from lab.freebsd import cli, geom, mounts, ufs
from lab.freebsd.fstab import entries as fstab_entries

USAGE = """usage: mount [-adflpruvw] [-F fstab] [-o options] [-t ufs | external_type]
       mount [-dfpruvw] special | node
       mount [-dfpruvw] [-o options] [-t ufs | external_type] special node"""
FLAG_OPTIONS = {"ro": mounts.MS_RDONLY, "rdonly": mounts.MS_RDONLY, "noatime": mounts.MS_NOATIME,
                "nosuid": mounts.MS_NOSUID, "noexec": mounts.MS_NOEXEC, "sync": mounts.MS_SYNCHRONOUS}
IGNORED_OPTIONS = {"rw", "late", "noauto", "sw", "failok", "async", "userquota", "groupquota", "current",
                   "fstab", "update", "force", "nosymfollow", "multilabel", "acls", "nfsv4acls", "noclusterr",
                   "noclusterw", "suiddir", "union"}
DEVFS_NODES = {"null": (1, 3), "zero": (1, 5), "random": (1, 8), "urandom": (1, 9), "full": (1, 7)}


class MountError(Exception):
    pass


def main(argv):
    return cli.run(_main, argv)


def split_libxo(args):
    """Take libxo's --libxo options out of the arguments, as xo_parse_args() does."""
    style = None
    rest = []
    iterator = iter(args)
    for arg in iterator:
        if arg == "--libxo":
            style = next(iterator, "")
        elif arg.startswith("--libxo=") or arg.startswith("--libxo:"):
            style = arg[len("--libxo="):]
        else:
            rest.append(arg)
    return style, rest


def _main(argv):
    style, args = split_libxo(argv[1:])
    opts, args = cli.parse("mount", args, "adF:fLlno:prt:uvw", USAGE)
    flags = {opt for opt, _value in opts}
    fstype = None
    options = []
    fstab = "/etc/fstab"
    for opt, value in opts:
        if opt == "-t":
            fstype = value
        elif opt == "-o":
            options += [item for item in value.split(",") if item]
        elif opt == "-F":
            fstab = value
    if "-r" in flags:
        options.append("ro")
    if "-w" in flags:
        options.append("rw")
    if "-a" in flags:
        return mount_all(fstab, fstype, options)
    if not args:
        if "-p" in flags:
            print_fstab_style(fstab)
        elif style is not None and "json" in style.split(","):
            print_json()
        else:
            print_plain()
        return 0
    if len(args) > 2:
        print(USAGE, file=sys.stderr)
        return 1
    try:
        if len(args) == 1:
            entry = fstab_lookup(fstab, args[0])
            if entry is None:
                raise MountError(f"{args[0]}: unknown special file or file system")
            special, node, fstype = entry["spec"], entry["file"], fstype or entry["type"]
            options = entry["options"] + options
        else:
            special, node = args
        do_mount(fstype or "ufs", special, node, options, update="-u" in flags)
    except MountError as error:
        cli.warnx("mount", str(error))
        return 1
    return 0


def fstab_lookup(path, name):
    for entry in fstab_entries(path):
        if name in (entry["spec"], entry["file"]):
            return entry
    return None


def mount_all(fstab, fstype, extra):
    status = 0
    mounted = {entry["mountpoint"] for entry in mounts.table()}
    for entry in fstab_entries(fstab):
        if entry["type"] == "swap" or "noauto" in entry["options"] or "late" in entry["options"]:
            continue
        if fstype is not None and entry["type"] != fstype or entry["file"] in mounted:
            continue
        try:
            do_mount(entry["type"], entry["spec"], entry["file"], entry["options"] + extra, update=False)
        except MountError as error:
            cli.warnx("mount", str(error))
            status = 1
    return status


def linux_flags(options):
    flags = 0
    data = []
    for option in options:
        name = option.split("=", 1)[0]
        if option in FLAG_OPTIONS:
            flags |= FLAG_OPTIONS[option]
        elif option == "rw":
            flags &= ~mounts.MS_RDONLY
        elif name in IGNORED_OPTIONS or name == "ruleset":
            continue
        else:
            data.append(option)
    return flags, data


def do_mount(fstype, special, node, options, update):
    if not os.path.isdir(node):
        raise MountError(f"{node}: No such file or directory")
    node = os.path.realpath(node)
    flags, data = linux_flags(options)
    if update:
        try:
            mounts.mount("", node, None, flags | mounts.MS_REMOUNT)
        except OSError as error:
            raise MountError(f"{node}: {error.strerror}")
        return
    if fstype == "ufs":
        mount_ufs(special, node, flags)
    elif fstype == "devfs":
        mount_devfs(node)
    elif fstype == "tmpfs":
        allowed = [item for item in data if item.split("=", 1)[0] in ("size", "mode", "uid", "gid", "inodes")]
        try:
            mounts.mount("tmpfs", node, "tmpfs", flags, ",".join(allowed))
        except OSError as error:
            raise MountError(f"tmpfs: {error.strerror}")
    elif fstype == "nullfs":
        if not os.path.isdir(special):
            raise MountError(f"{special}: No such file or directory")
        try:
            mounts.mount(special, node, None, mounts.MS_BIND)
            if flags:
                mounts.mount("", node, None, flags | mounts.MS_BIND | mounts.MS_REMOUNT)
        except OSError as error:
            raise MountError(f"{special}: {error.strerror}")
    else:
        raise MountError(f"{special}: Operation not supported by device")


def mount_ufs(special, node, flags):
    try:
        prov = geom.provider(special)
    except geom.NoProvider:
        raise MountError(f"{special}: No such file or directory")
    device = "/dev/" + prov["name"]
    if prov["node"] is None or ufs.superblock(prov["node"]) is None:
        raise MountError(f"{special}: Invalid argument")
    if mounts.find(device) is not None:
        raise MountError(f"{special}: Device busy")
    try:
        mounts.mount(device, node, "ext4", flags)
    except OSError as error:
        raise MountError(f"{special}: {error.strerror}")


def mount_devfs(node):
    try:
        mounts.mount("devfs", node, "tmpfs", mounts.MS_NOSUID, "mode=0555,size=1m")
    except OSError as error:
        raise MountError(f"devfs: {error.strerror}")
    for name, (major, minor) in DEVFS_NODES.items():
        os.mknod(os.path.join(node, name), 0o666 | 0o020000, os.makedev(major, minor))
        os.chmod(os.path.join(node, name), 0o666)
    os.symlink("/proc/self/fd", os.path.join(node, "fd"))
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{number}", os.path.join(node, name))


def print_plain():
    for entry in mounts.table():
        detail = ", ".join([entry["fstype"]] + entry["flags"])
        print(f"{entry['device']} on {entry['mountpoint']} ({detail})")


def print_json():
    items = []
    for entry in mounts.table():
        item = {"node": entry["device"], "mounted-on": entry["mountpoint"], "fstype": entry["fstype"]}
        if entry["flags"]:
            item["opts"] = entry["flags"]
        items.append(json.dumps(item, separators=(",", ":")))
    print('{"mount": {"mounted": [' + ", ".join(items) + "]}\n}")


def _pad(text):
    length = len(text)
    if length < 8:
        return text + "\t\t\t"
    if length < 16:
        return text + "\t\t"
    if length < 24:
        return text + "\t"
    return text + " "


def print_fstab_style(fstab):
    entries = fstab_entries(fstab)
    for entry in mounts.table():
        options = ["ro" if entry["read_only"] else "rw"]
        for flag in ("noexec", "nosuid", "noatime"):
            if flag in entry["flags"]:
                options.append(flag)
        text = ",".join(options)
        listed = next((item for item in entries if item["spec"] == entry["device"]), None) \
            or next((item for item in entries if item["file"] == entry["mountpoint"]), None)
        if listed is not None:
            numbers = f"{listed['dump']} {listed['pass']}"
        elif entry["fstype"] == "ufs":
            numbers = "1 1" if entry["mountpoint"] == "/" else "2 2"
        else:
            numbers = "0 0"
        print(_pad(entry["device"]) + _pad(entry["mountpoint"]) + entry["fstype"] + "\t" + text
              + ("\t" if len(text) < 8 else " ") + "\t" + numbers)
