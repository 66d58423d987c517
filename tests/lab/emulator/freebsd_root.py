"""A private root for testing the emulated FreeBSD commands without a whole lab host.

An overlay of the machine's / (read-only lower layer, a tmpfs upper layer) in its own mount and PID namespaces,
with a fresh tmpfs /dev and /.kernel, an empty /usr/local and /tmp as a fresh FreeBSD has them (nothing the
machine keeps there, which may change under the overlay while a test runs), the lab package at
/usr/libexec/lab/lab and a launcher at the FreeBSD path of every MANIFEST entry, as the lab host has them.
Commands run chrooted into it through nsenter. Loop devices are global, so teardown runs /usr/libexec/lab/halt and
then clears any loop the kernel state still names.
"""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from lab.rootfs import read_manifest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
LAB = os.path.join(REPO, "lab")
LAUNCHER = """#!/usr/libexec/lab/bin/python3 -IS
import sys
sys.path.insert(0, "/usr/libexec/lab")
from lab.freebsd.commands.{module} import main
sys.exit(main(sys.argv))
"""
SETUP = r"""
set -e
mount --make-rprivate /
mount -t tmpfs lab-layers "$LAYERS"
mkdir "$LAYERS/upper" "$LAYERS/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$LAYERS/upper,workdir=$LAYERS/work" "$ROOT"
mount -t tmpfs tmpfs "$ROOT/dev"
mount -t tmpfs local "$ROOT/usr/local"
mount -t tmpfs -o mode=1777 tmp "$ROOT/tmp"
for node in "null c 1 3" "zero c 1 5" "random c 1 8" "urandom c 1 9" "loop-control c 10 237"; do
    set -- $node; mknod -m 666 "$ROOT/dev/$1" $2 $3 $4
done
mkdir -p "$ROOT/.kernel" "$ROOT/usr/libexec/lab/bin" "$ROOT/usr/libexec/lab/lab"
mount -t tmpfs kernel "$ROOT/.kernel"
mount -t proc proc "$ROOT/proc"
mount --bind -o ro "$LAB" "$ROOT/usr/libexec/lab/lab"
ln -sf /usr/bin/python3 "$ROOT/usr/libexec/lab/bin/python3"
echo ready
exec python3 -c "$REAPER" lab-root-holder
"""
# PID 1 of the private PID namespace: reaps orphans as init does (a daemon stopped by rc.d must vanish).
REAPER = """
import os, time
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
"""
ENV = {"PATH": "/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin", "HOME": "/root", "LANG": "C"}
LOOP_CLR_FD = 0x4C01


class PrivateRoot:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="lab-root-")
        self.root = os.path.join(self.dir, "root")
        layers = os.path.join(self.dir, "layers")
        os.makedirs(self.root)
        os.makedirs(layers)
        env = dict(os.environ, ROOT=self.root, LAYERS=layers, LAB=LAB, REAPER=REAPER)
        self.holder = subprocess.Popen(["unshare", "--mount", "--pid", "--fork", "sh", "-c", SETUP], env=env,
                                       stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = self.holder.stdout.readline()
        if line.strip() != "ready":
            self.holder.kill()
            raise RuntimeError("private root setup failed")
        self.pid = self._namespace_pid()
        self.install_commands()

    def _namespace_pid(self):
        """The PID (in our namespace) of the process that holds the private namespaces open."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as handle:
                            cmd = handle.read().split(b"\0")
                        with open(f"/proc/{pid}/stat") as handle:
                            session = int(handle.read().rsplit(")", 1)[1].split()[3])
                    except OSError:
                        continue
                    if b"lab-root-holder" in cmd and session == self.holder.pid:
                        return int(pid)
            time.sleep(0.05)
        raise RuntimeError("namespace holder not found")

    def path(self, rel):
        """Path on the machine of `rel` inside the private root (through the holder's view)."""
        return f"/proc/{self.pid}/root{self.root}/{rel.lstrip('/')}"

    def write(self, rel, text, mode=0o644):
        target = self.path(rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as handle:
            handle.write(text)
        os.chmod(target, mode)

    def read(self, rel):
        with open(self.path(rel)) as handle:
            return handle.read()

    def install_commands(self):
        for fbsd_path, module in read_manifest(os.path.join(LAB, "freebsd", "commands", "MANIFEST")):
            self.write(fbsd_path, LAUNCHER.format(module=module), 0o755)
        # the lab's shell-script commands (service); the tests write the rc.d scripts they need themselves
        scripts = os.path.join(LAB, "freebsd", "userland", "scripts")
        for fbsd_path, script in read_manifest(os.path.join(scripts, "MANIFEST")):
            if not fbsd_path.startswith("/etc/"):
                with open(os.path.join(scripts, script)) as handle:
                    self.write(fbsd_path, handle.read(), 0o755)

    def run(self, *argv, input=None, timeout=60):
        """Run a command in the private root; returns CompletedProcess with text output."""
        command = ["nsenter", "-t", str(self.pid), "-m", "-p", "--", "chroot", self.root, *argv]
        return subprocess.run(command, input=input, capture_output=True, text=True, env=ENV, timeout=timeout)

    def sh(self, script, input=None):
        return self.run("/bin/sh", "-c", script, input=input)

    def kernel_state(self, subsystem):
        try:
            with open(self.path(f"/.kernel/{subsystem}.json")) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return {}

    def close(self):
        loops = [eli.get("loop") for eli in self.kernel_state("geli").get("providers", {}).values()]
        loops += [unit["loop"] for unit in self.kernel_state("md").get("units", {}).values()]
        try:
            self.run("/usr/libexec/lab/halt", timeout=30)
        finally:
            os.killpg(self.holder.pid, signal.SIGKILL)
            self.holder.wait(timeout=10)
            for loop in loops:
                if loop is not None and os.path.exists(f"/dev/loop{loop}"):
                    fd = os.open(f"/dev/loop{loop}", os.O_RDONLY)
                    try:
                        fcntl.ioctl(fd, LOOP_CLR_FD, 0)
                    except OSError:
                        pass
                    finally:
                        os.close(fd)
            shutil.rmtree(self.dir, ignore_errors=True)
