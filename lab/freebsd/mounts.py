"""The mount table of a lab host as FreeBSD's getmntinfo(3) would return it, read from Linux's mountinfo.

Real mounts are made with mount(2) (so jails and every process see them), and this module translates them:
the lab root shows as /dev/vtbd0p2 (ufs), an ext4 filesystem on an md unit or GELI provider shows as ufs on
/dev/mdN[.eli], a tmpfs named "devfs" (or whatever sits on /dev) as devfs, a bind mount as nullfs. Linux-only
mounts (proc, sysfs, cgroups, the kernel state tmpfs, the lab's own helpers) are not shown.
"""

import ctypes
import os
import struct

from lab.freebsd import geom, kernel, loopdev

ROOT_DEVICE = "/dev/vtbd0p2"
HIDDEN_TYPES = {"proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "securityfs", "debugfs", "tracefs",
                "pstore", "bpf", "binfmt_misc", "hugetlbfs", "fusectl", "configfs", "autofs", "nsfs"}
LINSYSFS = "/compat/linux/sys"  # sysfs, shown as FreeBSD's Linux-compatible linsysfs
HIDDEN_PREFIXES = ("/usr/libexec/lab", "/proc", "/sys")
# FreeBSD's mount(8) prints these flag names in this order.
FLAG_ORDER = ["asynchronous", "local", "noatime", "noexec", "nosuid", "read-only", "synchronous",
              "soft-updates", "journaled soft-updates"]

MS_RDONLY, MS_NOSUID, MS_NOEXEC, MS_SYNCHRONOUS, MS_REMOUNT = 1, 2, 8, 16, 32
MS_NOATIME, MS_BIND, MS_REC = 1024, 4096, 16384
MNT_FORCE, MNT_DETACH = 1, 2

# The C library the interpreter itself is linked with: dlopen(NULL) finds mount(2) and umount2(2) without
# ctypes.util.find_library, which runs ldconfig or a compiler on every start of every command importing this.
_libc = ctypes.CDLL(None, use_errno=True)


def _unescape(field):
    return field.encode().decode("unicode_escape") if "\\" in field else field


def linux_mounts():
    """Entries of /proc/self/mountinfo as dicts (root, mountpoint, options, fstype, source, dev)."""
    entries = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            left, _sep, right = line.rstrip("\n").partition(" - ")
            fields = left.split(" ")
            fstype, source, superopts = (right.split(" ") + ["", "", ""])[:3]
            major, minor = fields[2].split(":")
            entries.append({"root": _unescape(fields[3]), "mountpoint": _unescape(fields[4]),
                            "options": fields[5].split(","), "fstype": fstype, "source": _unescape(source),
                            "superopts": superopts.split(","), "dev": (int(major), int(minor))})
    return entries


def _loop_names():
    """{(major, minor): FreeBSD provider name} for md units and GELI providers."""
    names = {}
    for unit, info in geom.md_units().items():
        names[loopdev.device_number(info["loop"])] = f"md{unit}"
    for consumer, eli in geom.eli_providers().items():
        if eli.get("loop") is not None:
            names[loopdev.device_number(eli["loop"])] = consumer + ".eli"
    return names


def _has_journal(loop):
    """Whether the ext4 filesystem on a loop device has a journal: newfs -U (soft updates) makes one."""
    try:
        with open(loopdev.node(loop), "rb") as handle:
            handle.seek(1024 + 0x5C)
            (compat,) = struct.unpack("<I", handle.read(4))
        return bool(compat & 0x4)
    except OSError:
        return False


def _loop_of(name):
    if name.endswith(".eli"):
        return geom.eli_providers()[name[:-4]]["loop"]
    return geom.md_units()[int(name[2:])]["loop"]


def table():
    """Mounted filesystems as FreeBSD shows them: dicts of device, mountpoint, fstype, flags, rw options."""
    result = []
    names = _loop_names()
    kernel_dir = os.path.realpath(kernel.KERNEL_DIR)
    for entry in linux_mounts():
        point = entry["mountpoint"]
        if entry["fstype"] == "sysfs" and point == LINSYSFS:
            result.append({"device": "linsysfs", "mountpoint": point, "fstype": "linsysfs",
                           "flags": ["local"], "read_only": "ro" in entry["options"]})
            continue
        if entry["fstype"] in HIDDEN_TYPES or point.startswith(HIDDEN_PREFIXES) or point == kernel_dir \
                or point.startswith(kernel_dir + "/"):
            continue
        if point in ("/dev/pts", "/dev/shm", "/dev/mqueue"):
            continue
        flags = []
        read_only = "ro" in entry["options"]
        if point == "/":
            device, fstype = ROOT_DEVICE, "ufs"
            flags = ["local", "soft-updates"]
        elif entry["dev"] in names:
            device, fstype = "/dev/" + names[entry["dev"]], "ufs"
            flags = ["local"]
            if _has_journal(_loop_of(names[entry["dev"]])):
                flags.append("soft-updates")
        elif point == "/dev" or entry["source"] == "devfs" or point.endswith("/dev") and entry["fstype"] == "tmpfs":
            device, fstype = "devfs", "devfs"
        elif entry["root"] != "/":
            if not os.path.isdir(point):
                continue
            device, fstype, flags = entry["root"], "nullfs", ["local"]
        elif entry["fstype"] == "tmpfs":
            device, fstype, flags = "tmpfs", "tmpfs", ["local"]
        else:
            continue
        if "noatime" in entry["options"]:
            flags.append("noatime")
        if "noexec" in entry["options"]:
            flags.append("noexec")
        if "nosuid" in entry["options"] and fstype != "devfs":
            flags.append("nosuid")
        if read_only:
            flags.append("read-only")
        flags.sort(key=FLAG_ORDER.index)
        result.append({"device": device, "mountpoint": point, "fstype": fstype, "flags": flags,
                       "read_only": read_only})
    return result


def find(path):
    """The table entry mounted on `path`, or whose device is `path`; the last (topmost) one."""
    found = None
    for entry in table():
        if path in (entry["mountpoint"], entry["device"]):
            found = entry
    return found


def mount(source, target, fstype, flags=0, data=""):
    """mount(2); raises OSError."""
    if _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                   data.encode() if data else None) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def unmount(target, flags=0):
    """umount2(2); raises OSError."""
    if _libc.umount2(target.encode(), flags) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))
