"""UFS as the lab has it: a real ext4 filesystem on the provider, made and checked by e2fsprogs.

newfs -U (soft updates) maps to an ext4 journal, plain newfs to ext4 without one, so mount(8) can show
"soft-updates" exactly when FreeBSD would. The statistics FreeBSD's tools print (sizes, free fragments,
files) come from the ext4 superblock, with one ext4 block standing for one UFS fragment.
"""

import struct
import subprocess

from lab.freebsd import cli

EXT_MAGIC = 0xEF53
BLOCK = 32768  # UFS block size newfs prints
FRAGMENT = 4096  # UFS fragment size newfs prints (and the ext4 block size used)


def superblock(node):
    """Selected ext4 superblock fields, or None when the device holds no filesystem."""
    try:
        with open(node, "rb") as handle:
            handle.seek(1024)
            raw = handle.read(1024)
    except OSError:
        return None
    if len(raw) < 1024 or struct.unpack_from("<H", raw, 0x38)[0] != EXT_MAGIC:
        return None
    inodes, blocks_lo, _reserved, free_lo, free_inodes = struct.unpack_from("<IIIII", raw, 0)
    log_block = struct.unpack_from("<I", raw, 0x18)[0]
    compat = struct.unpack_from("<I", raw, 0x5C)[0]
    last_mounted = raw[0x88:0xC8].split(b"\0", 1)[0].decode(errors="replace")
    return {"inodes": inodes, "blocks": blocks_lo, "free_blocks": free_lo, "free_inodes": free_inodes,
            "block_size": 1024 << log_block, "journal": bool(compat & 0x4), "last_mounted": last_mounted}


def make(node, soft_updates, label=None):
    """Create the filesystem (newfs); returns mkfs.ext4's exit status."""
    command = [cli.linux_tool("mkfs.ext4"), "-q", "-F", "-b", str(FRAGMENT), "-E", "nodiscard"]
    if not soft_updates:
        command += ["-O", "^has_journal"]
    if label:
        command += ["-L", label]
    return subprocess.run(command + [node], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE).returncode


def check(node, mode, force):
    """Run e2fsck in mode "preen", "yes" or "no"; returns its exit status (0 clean, 1-2 fixed, 4 left, 8 error)."""
    flag = {"preen": "-p", "yes": "-y", "no": "-n"}[mode]
    command = [cli.linux_tool("e2fsck"), flag] + (["-f"] if force else []) + [node]
    return subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode


def summary(sb):
    """Numbers of fsck's summary line: files, used and free fragments, free full blocks."""
    frags_per_block = BLOCK // FRAGMENT
    free = sb["free_blocks"]
    return {"files": sb["inodes"] - sb["free_inodes"], "used": sb["blocks"] - free, "free": free,
            "frags": free % frags_per_block, "full_blocks": free // frags_per_block}
