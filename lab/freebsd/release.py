"""The files of the lab's base system that belong to the release and change with its patch level.

On FreeBSD the userland version is hard-coded in /bin/freebsd-version, the installed kernel's version is a
what(1) string in /boot/kernel/kernel, and security fixes replace libraries such as /lib/libcrypto.so.30;
freebsd-update(8) replaces those files. The lab has the same three files, made for a patch level by files():
/bin/freebsd-version is a launcher of the lab's freebsd-version that carries USERLAND_VERSION, the kernel is a
data file holding the what(1) string, the library a placeholder naming its OpenSSL version.

install() puts the installed patch level's files (version.PATCH) into a root once; afterwards they belong to
the root (and to freebsd-update), so later boots of a lab host do not undo an update. The lab's update server
(lab.mirror) publishes version.UPDATE_PATCH of the same files.
"""

import os

from lab.freebsd import rootfiles
from lab.freebsd.userland import version

FREEBSD_VERSION = "/bin/freebsd-version"
KERNEL = "/boot/kernel/kernel"
LIBRARY = "/lib/libcrypto.so.30"
WORKDIR = "/var/db/freebsd-update"
MARKER = b"USERLAND_VERSION = "

LAUNCHER = """#!/usr/libexec/lab/bin/python3 -IS
# freebsd-version(1) of the lab: USERLAND_VERSION below is what -u prints (FreeBSD hard-codes it the same way).
import sys
sys.path.insert(0, "/usr/libexec/lab")
from lab.freebsd.userland.freebsd_version import main
USERLAND_VERSION = "{version}"
sys.exit(main(sys.argv, USERLAND_VERSION))
"""
KERNEL_TEXT = ("\x7fELF lab kernel: the running kernel of a lab host is the machine's; this file carries the\n"
               "version string that freebsd-version -k reads and that the next boot runs.\n"
               "\0@(#)FreeBSD {version} {ident} amd64\n\0")
LIBRARY_TEXT = "\x7fELF lab stand-in for libcrypto.so.30 of FreeBSD {version} (OpenSSL 3.0.16, patch {patch})\n"
# OpenSSL's version line changes with FreeBSD's patch levels; the number only tells the two apart.


def patch_number(patch):
    return int(patch.lstrip("p") or 0)


def release_version(patch):
    return version.RELEASE if patch_number(patch) == 0 else f"{version.RELEASE}-{patch}"


def files(patch):
    """path -> (component, content bytes, mode) of the release files at a patch level."""
    full = release_version(patch)
    return {
        FREEBSD_VERSION: ("world|base", LAUNCHER.format(version=full).encode(), 0o555),
        LIBRARY: ("world|base", LIBRARY_TEXT.format(version=full, patch=patch).encode(), 0o444),
        KERNEL: ("kernel|generic", KERNEL_TEXT.format(version=full, ident=version.KERNEL_IDENT).encode(), 0o555),
    }


def kernel_version(data):
    """The version in a kernel file's what(1) string, or None."""
    marker = data.find(b"@(#)FreeBSD ")
    if marker < 0:
        return None
    return data[marker + len(b"@(#)FreeBSD "):].split()[0].decode()


def _owned(path):
    """True when path already holds a release file of some patch level (one the root or an update wrote)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(4096)
    except OSError:
        return False
    if path.endswith("freebsd-version"):
        return MARKER in data
    if path.endswith("kernel"):
        return b"@(#)FreeBSD " in data
    return data.startswith(b"\x7fELF lab stand-in")


def install(root):
    """Give a root the installed patch level's release files where it has none yet, and the workdir."""
    for path, (_, content, mode) in files(version.PATCH).items():
        target = os.path.join(root, path.lstrip("/"))
        if _owned(target):
            continue
        rootfiles.install(root, path, content, mode)
    workdir = os.path.join(root, WORKDIR.lstrip("/"))
    os.makedirs(workdir, exist_ok=True)
    os.chmod(workdir, 0o700)
