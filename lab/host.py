"""Lifecycle of a lab host: up, stop, reboot, destroy, status.

A running lab host is one process tree on the machine: `ip netns exec lab-NAME unshare --mount --uts --pid
--fork --kill-child python -m lab.boot ...`. The unshare process is recorded in HOST_DIR/init.pid; its
child is the lab host's PID 1. Killing it powers the lab host off: the kernel ends every process of the
PID namespace, and the mount namespace (overlay, /proc, /dev, /.kernel) goes with them. The disk is the
overlay's upper directory HOST_DIR/disk, which survives stop and reboot. Only destroy removes it.

All operations are idempotent and touch only what the lab made: its directory, its network namespace
`lab-NAME`, its veth `tjlabN`, and the mirror's address on the machine's loopback.
"""

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from lab import mirror, network, paths, rootfs

BOOT_TIMEOUT = 90
SHUTDOWN_TIMEOUT = 60


class LabError(Exception):
    pass


def require_root():
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, mounts)")


# ----- state -----

def _state_path(name):
    return os.path.join(paths.host_dir(name), "state.json")


def read_state(name):
    try:
        with open(_state_path(name)) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def known_hosts():
    """Names of the lab hosts that have a disk under the lab directory."""
    hosts = os.path.join(paths.lab_dir(), "hosts")
    if not os.path.isdir(hosts):
        return []
    return sorted(name for name in os.listdir(hosts) if os.path.exists(os.path.join(hosts, name, "state.json")))


def _choose_index(name, wanted):
    state = read_state(name)
    if state:
        if wanted is not None and wanted != state["index"]:
            raise LabError(f"lab host {name} already has index {state['index']} (destroy it to change)")
        return state["index"]
    taken = {state["index"] for state in map(read_state, known_hosts()) if state}
    if wanted is not None:
        if not 1 <= wanted <= paths.MAX_INDEX:
            raise LabError(f"index must be between 1 and {paths.MAX_INDEX}")
        if wanted in taken:
            raise LabError(f"index {wanted} is used by another lab host")
        return wanted
    for index in range(1, paths.MAX_INDEX + 1):
        if index not in taken:
            return index
    raise LabError("no free lab index")


def _boot_pid(name):
    """PID (on the machine) of the running lab host's unshare process, or None."""
    try:
        with open(os.path.join(paths.host_dir(name), "init.pid")) as handle:
            pid = int(handle.read())
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().split(b"\0")
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    if b"lab.boot" in cmdline and name.encode() in cmdline:
        return pid
    return None


def init_pid(name):
    """PID (on the machine) of the lab host's init, PID 1 of its namespace, or None."""
    pid = _boot_pid(name)
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            children = handle.read().split()
    except FileNotFoundError:
        return None
    return int(children[0]) if children else None


def is_running(name):
    return _boot_pid(name) is not None


# ----- SSH material -----

def ensure_key():
    """The lab's SSH key, made once (under a lock: lab hosts may come up side by side)."""
    key = paths.key_path()
    os.makedirs(os.path.dirname(key), exist_ok=True)
    with open(key + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "torjail-lab", "-f", key],
                           check=True)
    return key


def write_ssh_files(name, index):
    disk_key = os.path.join(paths.host_dir(name), "disk/etc/ssh/ssh_host_ed25519_key.pub")
    with open(disk_key) as handle:
        key_type, key_data = handle.read().split()[:2]
    with open(paths.known_hosts_path(name), "w") as handle:
        handle.write(f"{name},{paths.address(index)} {key_type} {key_data}\n")
    with open(paths.ssh_config_path(name), "w") as handle:
        handle.write(
            f"Host {name} {paths.address(index)}\n"
            f"    HostName {paths.address(index)}\n"
            "    User root\n"
            "    Port 22\n"
            f"    IdentityFile {paths.key_path()}\n"
            "    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile {paths.known_hosts_path(name)}\n"
            "    GlobalKnownHostsFile /dev/null\n"
            "    StrictHostKeyChecking yes\n"
            "    BatchMode yes\n"
            "    ConnectTimeout 10\n"
            "    LogLevel ERROR\n"
            # One connection shared by every ssh command: the relay's pf lets a source open only so many
            # new SSH connections a minute (sshd_connection_rate) before it lands in <bruteforce>.
            "    ControlMaster auto\n"
            f"    ControlPath {paths.host_dir(name)}/ssh-%C\n"
            "    ControlPersist 30\n")


# ----- lifecycle -----

def _wait_for_sshd(name, index, proc):
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabError(f"lab host {name} died while booting; see {_console(name)}")
        try:
            with socket.create_connection((paths.address(index), 22), timeout=1) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise LabError(f"sshd of lab host {name} did not answer within {BOOT_TIMEOUT} s; see {_console(name)}")


def _console(name):
    return os.path.join(paths.host_dir(name), "console.log")


def up(name, index=None, log=print):
    """Bring the lab host up (build what is missing, boot it); do nothing more when it already runs."""
    require_root()
    paths.check_name(name)
    index = _choose_index(name, index)
    hdir = paths.host_dir(name)
    for sub in ("disk", "work", "root"):
        os.makedirs(os.path.join(hdir, sub), exist_ok=True)
    # written whole, then renamed: a host coming up beside this one may read it at any moment
    partial = _state_path(name) + ".partial"
    with open(partial, "w") as handle:
        json.dump({"name": name, "index": index}, handle)
    os.replace(partial, _state_path(name))
    base = rootfs.ensure_base(log)
    ensure_key()
    network.ensure(name, index)
    mirror.ensure(base, log)
    if not is_running(name):
        _boot(name, index, base, log)
    write_ssh_files(name, index)
    return index


def _boot(name, index, base, log):
    hdir = paths.host_dir(name)
    package_parent = os.path.dirname(rootfs.LAB_PACKAGE)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": package_parent, "LANG": "C.UTF-8",
           # lab.boot writes the mirror's address into a new disk's /etc/freebsd-update.conf.
           "TORJAIL_LAB_MIRROR_PORT": str(paths.MIRROR_PORT)}
    argv = ["ip", "netns", "exec", paths.netns_name(name),
            "unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--propagation", "private",
            sys.executable, "-m", "lab.boot", name, str(index), base, os.path.join(hdir, "disk"),
            os.path.join(hdir, "work"), os.path.join(hdir, "root"), paths.key_path() + ".pub", paths.mirror_ca_path()]
    with open(_console(name), "ab") as console:
        console.write(f"\n--- boot {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
        console.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=console, env=env,
                                cwd=package_parent, start_new_session=True)
    with open(os.path.join(hdir, "init.pid"), "w") as handle:
        handle.write(f"{proc.pid}\n")
    log(f"booting lab host {name} ({paths.address(index)})")
    _wait_for_sshd(name, index, proc)


def _in_host(name, argv, timeout):
    """Run a command inside the running lab host (all its namespaces, its root), its output going to the
    console log; return its exit status (None when it did not finish in time)."""
    pid = init_pid(name)
    if pid is None:
        return None
    env = {"PATH": "/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin", "HOME": "/root"}
    with open(_console(name), "ab") as console:
        try:
            return subprocess.run(["nsenter", "-t", str(pid), "-m", "-u", "-p", "-n", "-r", "-w"] + argv, env=env,
                                  timeout=timeout, stdin=subprocess.DEVNULL, stdout=console, stderr=console).returncode
        except subprocess.TimeoutExpired:
            return None


def _close_shared_ssh(name):
    """End the shared ssh connection (ControlMaster) to a lab host that is going down."""
    if os.path.exists(paths.ssh_config_path(name)):
        subprocess.run(["ssh", "-F", paths.ssh_config_path(name), "-O", "exit", name], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=15)


def stop(name, log=print):
    """Shut the lab host down as a halt does: rc.shutdown, then the lab's halt hook, then end every process;
    its network namespace (kept for the next boot) loses what a power-off drops (network.reset)."""
    require_root()
    pid = _boot_pid(name)
    if pid is None:
        _forget_pid(name)
        return False
    log(f"stopping lab host {name}")
    _close_shared_ssh(name)
    _in_host(name, ["/bin/sh", "/etc/rc.shutdown"], SHUTDOWN_TIMEOUT)
    _in_host(name, ["/bin/sh", "-c", "[ ! -x /usr/libexec/lab/halt ] || exec /usr/libexec/lab/halt"],
             SHUTDOWN_TIMEOUT)
    child = init_pid(name)
    if child is not None:
        _kill(child)
    _kill(pid)
    deadline = time.monotonic() + 10
    while _boot_pid(name) == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it when this process started it (up and stop in one program)
    except ChildProcessError:
        pass
    if _boot_pid(name) == pid:
        raise LabError(f"lab host {name} (pid {pid}) did not stop")
    _forget_pid(name)
    state = read_state(name)
    if state is not None:
        network.reset(name, state["index"])
    return True


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _forget_pid(name):
    try:
        os.unlink(os.path.join(paths.host_dir(name), "init.pid"))
    except FileNotFoundError:
        pass


def reboot(name, log=print):
    state = read_state(name)
    if state is None:
        raise LabError(f"no lab host {name}: bring it up first")
    stop(name, log)
    return up(name, state["index"], log)


def destroy(name, log=print):
    """Stop the lab host and remove its disk, its network namespace and veth; the last one takes the mirror."""
    require_root()
    state = read_state(name)
    stop(name, log)
    if state is not None:
        network.remove(name, state["index"])
    shutil.rmtree(paths.host_dir(name), ignore_errors=True)
    mirror.stop_unless_used(known_hosts)
    log(f"lab host {name} destroyed")


def status(name):
    """A few lines describing the lab host, and whether it runs."""
    state = read_state(name)
    if state is None:
        return False, f"{name}: absent"
    index = state["index"]
    running = is_running(name)
    lines = [
        f"{name}: {'running' if running else 'stopped'} (index {index}, init pid {init_pid(name) or '-'})",
        f"  address:     {paths.address(index)} (vtnet0 in network namespace {paths.netns_name(name)})",
        f"  ssh:         ssh -F {paths.ssh_config_path(name)} {name}",
        f"  ssh key:     {paths.key_path()}",
        f"  known_hosts: {paths.known_hosts_path(name)}",
        f"  disk:        {os.path.join(paths.host_dir(name), 'disk')}",
        f"  console:     {_console(name)}",
        f"  mirror:      {mirror.url() + '/' + mirror.RELEASE_PATH + '/' if mirror.is_serving() else 'not serving'}",
    ]
    return running, "\n".join(lines)


def ssh(name, command, input=None, timeout=120):
    """Run a shell command on the lab host over real SSH (its ssh_config, strict host key checking).

    Returns (exit status, stdout, stderr) as text; ssh's own failures come back as status 255."""
    argv = ["ssh", "-F", paths.ssh_config_path(name), name, command]
    # Either input or stdin, never both: gevent's subprocess (present once pyinfra's CLI is imported in the same
    # process) refuses the pair even when stdin is None.
    feed = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **feed)
    return result.returncode, result.stdout, result.stderr
