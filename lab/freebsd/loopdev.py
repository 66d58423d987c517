"""Linux loop devices, the real block devices behind the lab's md(4) units and GELI providers.

Loop devices are global to the machine (not namespaced), so every one the lab makes is recorded in the kernel
state and released by /usr/libexec/lab/halt. The ioctls are issued directly; the nodes used to reach a loop live
in a hidden directory /dev/.loop, so a listing of the lab's /dev only shows FreeBSD names (mdN, mdN.eli),
block nodes made with the same device numbers as the loops behind them.
"""

import errno
import fcntl
import os
import stat
import struct
import time

DEV = os.environ.get("LAB_DEV_DIR", "/dev")
SYSFS = os.environ.get("LAB_SYSFS_DIR", "/compat/linux/sys")  # where a lab host mounts sysfs (as linsysfs)
LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_SET_STATUS64 = 0x4C04
LOOP_GET_STATUS64 = 0x4C05
LOOP_SET_BLOCK_SIZE = 0x4C09
LOOP_CTL_GET_FREE = 0x4C82
LOOP_MAJOR = 7
# struct loop_info64: 5 x u64, 4 x u32, file name[64], crypt name[64], key[32], 2 x u64
LOOP_INFO64 = struct.Struct("=5Q4I64s64s32s2Q")
LO_FLAGS_READ_ONLY = 1


def _node_dir():
    return os.path.join(DEV, ".loop")


def device_number(number):
    """The (major, minor) of loop device `number`, as sysfs reports it when it is mounted."""
    try:
        with open(f"{SYSFS}/block/loop{number}/dev") as handle:
            major, minor = handle.read().strip().split(":")
            return int(major), int(minor)
    except OSError:
        return LOOP_MAJOR, number


def node(number):
    """Path of a block node for loop `number`, made on demand in /dev/.loop."""
    path = os.path.join(_node_dir(), f"loop{number}")
    major, minor = device_number(number)
    wanted = os.makedev(major, minor)
    try:
        info = os.stat(path)
        if stat.S_ISBLK(info.st_mode) and info.st_rdev == wanted:
            return path
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.makedirs(_node_dir(), exist_ok=True)
    os.mknod(path, 0o600 | stat.S_IFBLK, wanted)
    return path


def make_device_node(path, number):
    """Create `path` (e.g. /dev/md0) as a block node with the device numbers of loop `number`."""
    major, minor = device_number(number)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.mknod(path, 0o640 | stat.S_IFBLK, os.makedev(major, minor))


def remove_device_node(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def attach(backing, sizelimit=0, block_size=512, read_only=False):
    """Attach a free loop device over the file or block device `backing`; return its number."""
    flags = os.O_RDONLY if read_only else os.O_RDWR
    backing_fd = os.open(backing, flags)
    try:
        deadline = time.monotonic() + 10
        for _attempt in range(50):
            control = os.open(_control_node(), os.O_RDWR)
            try:
                number = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
            finally:
                os.close(control)
            loop_fd = os.open(node(number), flags)
            try:
                try:
                    fcntl.ioctl(loop_fd, LOOP_SET_FD, backing_fd)
                except OSError as error:
                    if error.errno == errno.EBUSY and time.monotonic() < deadline:
                        continue  # another process took this loop between GET_FREE and SET_FD
                    raise
                name = os.path.basename(backing).encode()[:63]
                info = LOOP_INFO64.pack(0, 0, 0, 0, sizelimit, number, 0, 0,
                                        LO_FLAGS_READ_ONLY if read_only else 0, name, b"", b"", 0, 0)
                try:
                    fcntl.ioctl(loop_fd, LOOP_SET_STATUS64, info)
                    if block_size != 512:
                        fcntl.ioctl(loop_fd, LOOP_SET_BLOCK_SIZE, block_size)
                except OSError:
                    fcntl.ioctl(loop_fd, LOOP_CLR_FD, 0)
                    raise
                return number
            finally:
                os.close(loop_fd)
        raise OSError(errno.EBUSY, "no free loop device")
    finally:
        os.close(backing_fd)


def _control_node():
    path = os.path.join(DEV, "loop-control")
    if not os.path.exists(path):
        os.makedirs(_node_dir(), exist_ok=True)
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(10, 237))
    return path


def detach(number):
    """Release loop `number`. Raises OSError(EBUSY) while it is still in use (mounted, or under another loop)."""
    loop_fd = os.open(node(number), os.O_RDONLY)
    try:
        fcntl.ioctl(loop_fd, LOOP_CLR_FD, 0)
    except OSError as error:
        if error.errno != errno.ENXIO:  # already free
            raise
    finally:
        os.close(loop_fd)


def in_use(number):
    """Whether something holds loop `number` open exclusively (a mounted filesystem, a loop stacked on it)."""
    try:
        loop_fd = os.open(node(number), os.O_RDONLY | os.O_EXCL)
    except OSError as error:
        if error.errno == errno.EBUSY:
            return True
        raise
    os.close(loop_fd)
    return False


def is_attached(number):
    """Whether loop `number` still has a backing file."""
    loop_fd = os.open(node(number), os.O_RDONLY)
    try:
        fcntl.ioctl(loop_fd, LOOP_GET_STATUS64, bytes(LOOP_INFO64.size))
        return True
    except OSError:
        return False
    finally:
        os.close(loop_fd)
