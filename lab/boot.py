"""Power-on of a lab host: runs as PID 1 of the lab host's fresh mount, PID and UTS namespaces.

`lab.host` starts it through `ip netns exec NETNS unshare --mount --uts --pid --fork`. It mounts the overlay
root (the cached base below, the lab host's disk above), installs the lab's current code into it, mounts
what a booting kernel provides (/proc, a /dev with the basic nodes, a fresh tmpfs /.kernel; sysfs under
/compat/linux/sys, as FreeBSD's linsysfs, for the emulation), sets the hostname, makes the overlay the only root of the namespace
(pivot_root) and hands over to the root's /sbin/init, which runs /etc/rc. Nothing here outlives the namespaces: killing PID 1 powers the host off.

At the first boot of a new disk it also does what an installer does: rc.conf (hostname, vtnet0's address,
default router, sshd), resolv.conf, the SSH host key and root's authorized_keys. At every boot the lab's CA
(lab.tls) is the system's trust store, /etc/ssl/cert.pem: the mirror's https certificate comes from it, and a
missing /etc/freebsd-update.conf is written with the mirror as ServerName (lab.updates). The version in
/boot/kernel/kernel becomes the running release (kern.osrelease) until the next boot.

Usage: python -m lab.boot NAME INDEX LOWER UPPER WORK MOUNTPOINT AUTHORIZED_KEY_FILE CA_FILE
"""

import ctypes
import json
import os
import shutil
import subprocess
import sys

from lab import paths, rootfs, updates
from lab.freebsd import release
from lab.freebsd.userland import version

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REC, MS_PRIVATE = 0x4000, 1 << 18
MNT_DETACH = 2
SYS_PIVOT_ROOT = 155  # x86_64

libc = ctypes.CDLL(None, use_errno=True)

DEVICES = {  # name: (type, major, minor, mode)
    "null": ("c", 1, 3, 0o666), "zero": ("c", 1, 5, 0o666), "full": ("c", 1, 7, 0o666),
    "random": ("c", 1, 8, 0o666), "urandom": ("c", 1, 9, 0o666), "tty": ("c", 5, 0, 0o666),
    # Linux loop devices stand behind md(4) units; the emulation creates /dev/loopN nodes as it needs them.
    "loop-control": ("c", 10, 237, 0o600),
    # The lab host's disk as a FreeBSD VM names it (reads see an empty device).
    "vtbd0": ("c", 1, 3, 0o640), "vtbd0p1": ("c", 1, 3, 0o640), "vtbd0p2": ("c", 1, 3, 0o640),
    "vtbd0p3": ("c", 1, 3, 0o640),
}


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source, target, fstype, flags=0, data=None):
    _check(libc.mount(source.encode() if source else None, target.encode(),
                      fstype.encode() if fstype else None, flags, data.encode() if data else None),
           f"mount {target}")


def make_dev(root):
    dev = os.path.join(root, "dev")
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=0755,size=4m")
    for name, (kind, major, minor, mode) in DEVICES.items():
        path = os.path.join(dev, name)
        os.mknod(path, mode | 0o020000, os.makedev(major, minor))
        os.chmod(path, mode)
    os.makedirs(os.path.join(dev, "pts"))
    mount("devpts", os.path.join(dev, "pts"), "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
    os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    os.symlink("/proc/self/fd", os.path.join(dev, "fd"))
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{number}", os.path.join(dev, name))
    os.makedirs(os.path.join(dev, "shm"), mode=0o1777)


def install(root, name, index, authorized_key):
    """First boot of a new disk: what the installer of a FreeBSD VM leaves behind."""
    with open(os.path.join(root, "etc/rc.conf"), "a") as handle:
        handle.write(f'hostname="{name}"\n'
                     f'ifconfig_vtnet0="inet {paths.address(index)} netmask 255.255.255.0"\n'
                     f'defaultrouter="{paths.gateway(index)}"\n')
    with open(os.path.join(root, "etc/resolv.conf"), "w") as handle:
        handle.write(f"nameserver {paths.gateway(index)}\n")
    shutil.copyfile(authorized_key, os.path.join(root, "root/.ssh/authorized_keys"))
    os.chmod(os.path.join(root, "root/.ssh/authorized_keys"), 0o600)
    key = os.path.join(root, "etc/ssh/ssh_host_ed25519_key")
    if not os.path.exists(key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", key], check=True)


def _boot_kernel(root):
    """The loader boots /boot/kernel/kernel: its version is the running release (kern.osrelease, uname -r)
    until the next boot, whatever freebsd-update installs meanwhile."""
    try:
        with open(os.path.join(root, "boot/kernel/kernel"), "rb") as handle:
            running = release.kernel_version(handle.read())
    except OSError:
        running = None
    with open(os.path.join(root, ".kernel", "kern.json"), "w") as handle:
        json.dump({"osrelease": running or version.VERSION}, handle)


def main(argv):
    name, index, lower, upper, work, mountpoint, authorized_key, ca_file = argv[1:9]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("overlay", mountpoint, "overlay", 0, f"lowerdir={lower},upperdir={upper},workdir={work}")
    rootfs.install_lab(mountpoint)
    installed = os.path.join(os.path.dirname(upper), "installed")
    if not os.path.exists(installed):
        install(mountpoint, name, int(index), authorized_key)
        open(installed, "w").close()
    conf = os.path.join(mountpoint, "etc/freebsd-update.conf")
    if not os.path.exists(conf):
        with open(conf, "w") as handle:
            handle.write(updates.conf_text(paths.mirror_url()))
    os.makedirs(os.path.join(mountpoint, "etc/ssl"), exist_ok=True)
    shutil.copyfile(ca_file, os.path.join(mountpoint, "etc/ssl/cert.pem"))
    mount("proc", os.path.join(mountpoint, "proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    make_dev(mountpoint)
    # The loop devices behind md(4) are described in sysfs. FreeBSD's /sys points to the kernel sources; a
    # FreeBSD host with Linux compatibility has linsysfs at /compat/linux/sys, and that is what mount -p shows.
    sysfs = os.path.join(mountpoint, "compat/linux/sys")
    os.makedirs(sysfs, exist_ok=True)
    mount("sysfs", sysfs, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount("tmpfs", os.path.join(mountpoint, ".kernel"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=64m")
    _boot_kernel(mountpoint)
    _check(libc.sethostname(name.encode(), len(name.encode())), "sethostname")
    os.chdir(mountpoint)
    _check(libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    env = {"PATH": "/sbin:/bin:/usr/sbin:/usr/bin", "HOME": "/", "TERM": "dumb"}
    os.execve("/usr/libexec/lab/bin/python3", ["/usr/libexec/lab/bin/python3", "-IS", "/sbin/init"], env)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
