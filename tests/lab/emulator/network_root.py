"""A private root with its own network and UTS namespaces, for the jail, network, pkg and pf commands.

Like freebsd_root.PrivateRoot (an overlay of the machine's / in private mount and PID namespaces, the MANIFEST
commands installed at their FreeBSD paths), plus: a network namespace holding `lo` and a `vtnet0` at
198.18.99.2/24 (one end of a veth pair whose other end stays in the same namespace), and the Linux tools the emulation calls under /usr/libexec/lab/bin, as on a lab host.
`make_root(path, programs)` builds a small jail root holding real Linux programs and their libraries.
"""

import os
import signal
import subprocess
import tempfile

from freebsd_root import ENV, LAB, REAPER, PrivateRoot

ADDRESS = "198.18.99.2"
TOOLS = ("ip", "nsenter", "unshare", "setpriv", "nft", "tor")
SETUP = r"""
set -e
mount --make-rprivate /
mount -t tmpfs lab-layers "$LAYERS"
mkdir "$LAYERS/upper" "$LAYERS/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$LAYERS/upper,workdir=$LAYERS/work" "$ROOT"
mount -t tmpfs tmpfs "$ROOT/dev"
mount -t tmpfs local "$ROOT/usr/local"
mount -t tmpfs -o mode=1777 tmp "$ROOT/tmp"
for node in "null c 1 3" "zero c 1 5" "random c 1 8" "urandom c 1 9"; do
    set -- $node; mknod -m 666 "$ROOT/dev/$1" $2 $3 $4
done
mkdir -p "$ROOT/.kernel" "$ROOT/usr/libexec/lab/bin" "$ROOT/usr/libexec/lab/lab"
mount -t tmpfs kernel "$ROOT/.kernel"
mount -t proc proc "$ROOT/proc"
mount --bind -o ro "$LAB" "$ROOT/usr/libexec/lab/lab"
ln -sf /usr/bin/python3 "$ROOT/usr/libexec/lab/bin/python3"
for tool in $TOOLS; do ln -sf "$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v $tool)" "$ROOT/usr/libexec/lab/bin/$tool"; done
hostname lab
ip link set lo up
ip link add vtnet0 type veth peer name vtnet0peer
ip addr add $ADDRESS/24 dev vtnet0
ip link set vtnet0 up
ip link set vtnet0peer up
echo ready
exec python3 -c "$REAPER" lab-root-holder
"""


class NetworkRoot(PrivateRoot):
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="lab-netroot-")
        self.root = os.path.join(self.dir, "root")
        layers = os.path.join(self.dir, "layers")
        os.makedirs(self.root)
        os.makedirs(layers)
        env = dict(os.environ, ROOT=self.root, LAYERS=layers, LAB=LAB, TOOLS=" ".join(TOOLS), ADDRESS=ADDRESS,
                   REAPER=REAPER)
        self.holder = subprocess.Popen(["unshare", "--mount", "--pid", "--net", "--uts", "--fork", "sh", "-c",
                                        SETUP], env=env, stdout=subprocess.PIPE, text=True,
                                       start_new_session=True)
        line = self.holder.stdout.readline()
        if line.strip() != "ready":
            self.holder.kill()
            raise RuntimeError("private root setup failed")
        self.pid = self._namespace_pid()
        self.install_commands()

    def run(self, *argv, input=None, timeout=60):
        command = ["nsenter", "-t", str(self.pid), "-m", "-p", "-n", "-u", "--", "chroot", self.root, *argv]
        return subprocess.run(command, input=input, capture_output=True, text=True, env=ENV, timeout=timeout)

    def make_root(self, path, programs=("/bin/sh", "/bin/sleep", "/bin/cat", "/bin/hostname", "/bin/ls")):
        """A minimal jail root at `path` inside the private root: the programs with their libraries, passwd."""
        script = f"""
set -e
mkdir -p {path}/bin {path}/etc {path}/dev {path}/proc {path}/tmp {path}/root {path}/var/run
for program in {' '.join(programs)}; do
    cp -L "$program" "{path}/bin/$(basename $program)"
    for lib in $(ldd "$program" | grep -o '/[^ ]*'); do
        mkdir -p "{path}$(dirname $lib)"; cp -L "$lib" "{path}$lib"
    done
done
printf 'root:*:0:0:Charlie &:/root:/bin/sh\\n' > {path}/etc/passwd
printf 'wheel:*:0:root\\n' > {path}/etc/group
"""
        result = self.sh(script)
        assert result.returncode == 0, result.stderr

    def close(self):
        try:
            self.run("/sbin/jail", "-R", "*", timeout=30)
        finally:
            os.killpg(self.holder.pid, signal.SIGKILL)
            self.holder.wait(timeout=10)
            subprocess.run(["rm", "-rf", self.dir], check=False)
