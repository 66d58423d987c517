"""The first process of a lab jail: it gives the jail its hostname and root, and then reaps orphans.

jail(8) starts it under `unshare --mount --uts --pid --fork`, so it is PID 1 of the jail's own PID namespace
and owns the jail's mount and UTS namespaces; `nsenter` into it is how jexec(8) and exec.start enter the jail.
It mounts a procfs for the jail's PID namespace on the jail's /proc (Linux programs such as tor and ps read it),
detaches from its namespace every mount outside the jail's path (so the jail pins no other filesystem, as on
FreeBSD), chroots into the jail's path, reports its host PID on the ready pipe and waits. A jail without `persist`
ends, as on FreeBSD, once its creation is over and its last process has exited (its own children and the
processes entered into it alike); a persistent one lives until jail -r kills it.

Usage: python -m lab.freebsd.jailinit PATH HOSTNAME PERSIST(0|1) READY_FD ARMED_FD
"""

import ctypes
import os
import re
import select
import socket
import sys
import time


def _mount_proc(path):
    target = os.path.join(path, "proc")
    if not os.path.isdir(target):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount(b"proc", target.encode(), b"proc", 0, None)


MNT_DETACH = 2
_ESCAPED = re.compile(r"\\([0-7]{3})")


def _mount_points():
    """Every mount point of this process's mount namespace, as /proc/self/mountinfo lists them (unescaped)."""
    with open("/proc/self/mountinfo") as handle:
        return [_ESCAPED.sub(lambda match: chr(int(match.group(1), 8)), line.split()[4]) for line in handle]


def _leave_other_mounts(path):
    """FreeBSD has one mount table: a jail's root sees its own subtree and holds no other filesystem in use. The
    jail's private mount namespace starts as a copy of the host's, so every mount outside the jail's path (another
    jail's encrypted root, say) is detached from it, deepest first: what the host unmounts later is then free,
    as on FreeBSD, and its device can be detached. The mounts the jail's path lies on stay."""
    libc = ctypes.CDLL(None, use_errno=True)
    keep = path.rstrip("/") or "/"
    for point in sorted(set(_mount_points()), key=len, reverse=True):
        if point == keep or point.startswith(keep + "/") or keep.startswith(point.rstrip("/") + "/"):
            continue
        libc.umount2(point.encode(), MNT_DETACH)


def _reap():
    """Collect exited children; return False when there are none left."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def _others_in_jail():
    """True while a process other than this one runs in the jail's PID namespace (its /proc lists them): one
    entered by jexec or exec.stop is not our child, and the jail lives on while it runs, as on FreeBSD."""
    try:
        return any(entry.isdigit() and entry != "1" for entry in os.listdir("/proc"))
    except OSError:
        return False


def main(argv):
    path, hostname, persist, ready_fd, armed_fd = argv[1], argv[2], argv[3] == "1", int(argv[4]), int(argv[5])
    host_pid = int(os.readlink("/proc/self"))
    socket.sethostname(hostname)
    _mount_proc(path)
    _leave_other_mounts(path)
    os.chroot(path)
    os.chdir("/")
    os.write(ready_fd, f"{host_pid}\n".encode())
    os.close(ready_fd)
    armed = False
    while True:
        if not armed:
            readable, _, _ = select.select([armed_fd], [], [], 0.5)
            if readable and not os.read(armed_fd, 64):
                armed = True
                os.close(armed_fd)
        else:
            time.sleep(0.5)
        children_left = _reap()
        if armed and not persist and not children_left and not _others_in_jail():
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
