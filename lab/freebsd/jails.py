"""Running jails of a lab host: the kernel's prison list, and how to enter a jail.

A lab jail is a chroot of its path in its own mount, PID and UTS namespaces, whose first process is
lab.freebsd.jailinit. The kernel state `jails` records each jail (jid, name, path, hostname, addresses,
parameters, the host PID of its first process and that process's start time, so a recycled PID is never
taken for a jail). A jail whose first process is gone no longer exists, as on FreeBSD.
jexec(8) and jail(8)'s exec.* commands enter a jail with nsenter into those namespaces and its root.
"""

import os
import signal
import subprocess
import time

from lab.freebsd import hosttools, kernel

EMPTY = {"last_jid": 0, "jails": []}
CLEAN_PATH = "/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin"


def process_start_time(pid):
    """Start time of a process in clock ticks since boot, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def alive(jail):
    return jail.get("holder") and process_start_time(jail["holder"]) == jail.get("holder_start")


def running():
    """The jails that exist now, in jid order."""
    return [jail for jail in kernel.read("jails", EMPTY)["jails"] if alive(jail)]


def find(key):
    """A running jail by name or jid (as text), or None."""
    for jail in running():
        if key in (jail["name"], str(jail["jid"])):
            return jail
    return None


def register(record):
    """Add a jail to the prison list, giving it the next jid; returns the jid."""
    with kernel.update("jails", EMPTY) as state:
        state["jails"] = [j for j in state["jails"] if alive(j)]
        state["last_jid"] += 1
        record["jid"] = state["last_jid"]
        state["jails"].append(record)
    return record["jid"]


def unregister(jid):
    with kernel.update("jails", EMPTY) as state:
        state["jails"] = [j for j in state["jails"] if j["jid"] != jid and alive(j)]


def update(jid, parameters):
    with kernel.update("jails", EMPTY) as state:
        for jail in state["jails"]:
            if jail["jid"] == jid:
                jail["parameters"].update(parameters)


def start_init(path, hostname, persist):
    """Start a jail's first process; return (host pid, its start time, the pipe that arms it when closed).

    The jail gets its own System V IPC namespace: it sees none of the host's objects. FreeBSD's sysvmsg, sysvsem
    and sysvshm = disable go further (the calls fail with ENOSYS); the lab only keeps the jail apart."""
    ready_read, ready_write = os.pipe()
    armed_read, armed_write = os.pipe()
    env = {"PATH": CLEAN_PATH, "PYTHONPATH": _package_root()}
    command = [hosttools.tool("unshare"), "--mount", "--uts", "--ipc", "--pid", "--fork", "--propagation", "private",
               hosttools.python(), "-m", "lab.freebsd.jailinit", path, hostname, "1" if persist else "0",
               str(ready_write), str(armed_read)]
    subprocess.Popen(command, pass_fds=(ready_write, armed_read), stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env,
                     cwd="/")
    os.close(ready_write)
    os.close(armed_read)
    with os.fdopen(ready_read) as ready:
        line = ready.readline().strip()
    if not line:
        os.close(armed_write)
        raise OSError("jail init did not start")
    pid = int(line)
    return pid, process_start_time(pid), armed_write


def _package_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def enter_command(jail, argv, uid=None, gid=None):
    """The command line that runs argv inside a jail (its namespaces and root), optionally as uid/gid.

    Without allow.raw_sockets (FreeBSD's default) a process in the jail cannot open raw sockets, root included:
    socket(2) fails with EPERM, as FreeBSD's prison_priv_check() refuses PRIV_NETINET_RAW. The lab drops
    CAP_NET_RAW from the process's bounding and inheritable sets before it enters the jail."""
    command = [hosttools.tool("nsenter"), "--target", str(jail["holder"]), "--mount", "--uts", "--ipc", "--pid",
               "--root", "--wd"]
    if jail["parameters"].get("allow.raw_sockets") is not True:
        command = [hosttools.tool("setpriv"), "--bounding-set", "-net_raw", "--inh-caps", "-net_raw"] + command
    if uid is not None:
        command += ["--setuid", str(uid), "--setgid", str(gid)]
    return command + ["--"] + list(argv)


def passwd_entry(root, user):
    """(uid, gid, home, shell) of a user in the passwd file under root, or None."""
    try:
        with open(os.path.join(root, "etc/passwd")) as handle:
            for line in handle:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 7 and (fields[0] == user or fields[2] == user):
                    return int(fields[2]), int(fields[3]), fields[5], fields[6]
    except OSError:
        pass
    return None


def clean_environment(root, user="root"):
    """The environment exec.clean and jexec -l give: the user's login environment, nothing inherited."""
    entry = passwd_entry(root, user) or (0, 0, "/root", "/bin/sh")
    env = {"PATH": CLEAN_PATH, "HOME": entry[2], "SHELL": entry[3], "USER": user, "LOGNAME": user}
    if "TERM" in os.environ:
        env["TERM"] = os.environ["TERM"]
    return env


def kill_all(jail, timeout):
    """Stop every process of a jail: SIGTERM to all, then (after `timeout` seconds at most) its init is killed,
    which makes the kernel kill whatever is left in the jail's PID namespace."""
    members = processes(jail)
    for pid in members:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(process_start_time(p) for p in processes(jail)):
        time.sleep(0.1)
    try:
        os.kill(jail["holder"], signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and process_start_time(jail["holder"]) == jail["holder_start"]:
        time.sleep(0.05)


def _pid_namespace(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def processes(jail):
    """Host PIDs of the processes inside a jail (its init excluded)."""
    namespace = _pid_namespace(jail["holder"])
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != jail["holder"] and _pid_namespace(entry) == namespace:
            found.append(int(entry))
    return found


def jail_of_pid(pid, jails=None):
    """The jid of the jail a host process runs in (0 for the host)."""
    namespace = _pid_namespace(pid)
    for jail in jails if jails is not None else running():
        if namespace and namespace == _pid_namespace(jail["holder"]):
            return jail["jid"]
    return 0
