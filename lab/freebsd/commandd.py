"""The lab's resident command server: emulated FreeBSD commands that start in a few milliseconds.

Every emulated command is Python; started as its own interpreter it pays 15 to 30 ms before its first line runs
(the interpreter, then the standard library and the lab's modules it imports), where a FreeBSD command starts in
one. A deploy's survey runs some sixty of them, so the lab's figures measured the lab more than torjail. This
server imports the served commands once, at boot, and runs each request in a forked child of itself: the child
takes the caller's standard streams, working directory, umask, ignored signals, arguments and environment, and
runs the command's `main(argv)` as its launcher would. The caller is lab/freebsd/labcmd.c, which stays the process
the shell started, forwards signals to the child and ends with the child's exit status or signal.

Only commands whose behaviour does not depend on being the caller's process are served (SERVED): nothing that
daemonises, holds locks for a child or reads its own parent. jexec is served: it execs nsenter, which enters the
jail's namespaces from whichever process runs it, and the jailed command sees the same jail either way. The others, and any request the
server should not take (a LAB_* variable that redirects the emulation, as the lab's own tests set; a caller with
a controlling terminal, on which geli may prompt), run as before, in their own interpreter. Only root reaches
the socket (mode 0600 in /.kernel, which every boot mounts afresh); a jail's root has no /.kernel, so commands
inside jails run in their own interpreter too.

init starts it before /etc/rc as `python3 -IS .../commandd.py lab-commandd`; ps(1) of the lab does not show it
(nor its children, which carry the same arguments until they end).
"""

import importlib
import io
import os
import selectors
import signal
import socket
import struct
import sys
import traceback

SOCKET_PATH = "/.kernel/commands.sock"
MARK = "lab-commandd"
# (package, module) of the served commands: see the module docstring for what may be served.
SERVED = {
    ("commands", name) for name in (
        "df", "dumpon", "fsck", "fsck_ufs", "geli", "ifconfig", "jexec", "kldload", "kldstat", "kldunload", "jls",
        "mdconfig", "mount", "netstat", "newfs", "pfctl", "pkg", "route", "sockstat", "swapctl", "swapinfo",
        "swapoff", "swapon", "sysctl", "sysrc", "umount")
} | {("userland", name) for name in ("date", "md5", "ps", "sed", "stat", "uname")}
REQUEST_SECONDS = 5
FDS = 4  # stdin, stdout, stderr, working directory


def _fields(payload):
    """The request's NUL-terminated fields, in order."""
    return iter(payload.split(b"\0")[:-1])


def _parse(payload):
    fields = _fields(payload)
    package, module = next(fields).decode().split()
    umask, ignored = int(next(fields)), int(next(fields))
    argv = [next(fields) for _ in range(int(next(fields)))]
    env = [next(fields) for _ in range(int(next(fields)))]
    return (package, module), umask, ignored, argv, dict(entry.split(b"=", 1) for entry in env if b"=" in entry)


def _receive(connection):
    """(fds, request) read from a new connection, or None when the caller went away or sent nonsense."""
    connection.settimeout(REQUEST_SECONDS)
    try:
        message, ancillary, _, _ = connection.recvmsg(8, socket.CMSG_SPACE(FDS * 4))
        fds = []
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += list(struct.unpack(f"{len(data) // 4}i", data[:len(data) - len(data) % 4]))
        if len(message) != 8 or len(fds) != FDS:
            for fd in fds:
                os.close(fd)
            return None
        length = struct.unpack("=Q", message)[0]
        payload = bytearray()
        while len(payload) < length:
            chunk = connection.recv(min(length - len(payload), 1 << 16))
            if not chunk:
                raise OSError("short request")
            payload += chunk
        return fds, _parse(bytes(payload))
    except (OSError, ValueError, StopIteration, UnicodeDecodeError):
        return None
    finally:
        connection.settimeout(None)


def _stdio(fd, mode, like):
    """A standard stream on `fd` as the interpreter makes one at start-up."""
    raw = io.FileIO(fd, mode, closefd=False)
    buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
    return io.TextIOWrapper(buffered, encoding=like.encoding, errors=like.errors,
                            line_buffering=fd == 2 or os.isatty(fd))


def _signals(ignored):
    """The dispositions a fresh interpreter has, under the caller's ignored signals."""
    for signo in signal.valid_signals():
        if signo in (signal.SIGKILL, signal.SIGSTOP):
            continue
        if ignored & (1 << signo) or signo in (signal.SIGPIPE, signal.SIGXFSZ):
            handler = signal.SIG_IGN
        elif signo == signal.SIGINT:
            handler = signal.default_int_handler
        else:
            handler = signal.SIG_DFL
        try:
            signal.signal(signo, handler)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _exit_status(code):
    """sys.exit's code as the interpreter's exit status."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _run(fds, request):
    """In the forked child: become the command and run it; never returns."""
    (package, module), umask, ignored, argv, env = request
    status = 1
    try:
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        os.fchdir(fds[3])
        os.closerange(3, 1 << 16)
        _signals(ignored)
        os.umask(umask)
        os.environb.clear()
        os.environb.update(env)
        sys.argv = [os.fsdecode(arg) for arg in argv]
        sys.stdin, sys.stdout, sys.stderr = (_stdio(0, "r", sys.__stdin__), _stdio(1, "w", sys.__stdout__),
                                             _stdio(2, "w", sys.__stderr__))
        try:
            status = _exit_status(importlib.import_module(f"lab.freebsd.{package}.{module}").main(sys.argv))
        except SystemExit as leaving:
            status = _exit_status(leaving.code)
        except KeyboardInterrupt:
            traceback.print_exc()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:  # noqa: BLE001: the interpreter's own report of an uncaught exception
            traceback.print_exc()
            status = 1
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            print(f"Exception ignored in: {sys.stdout!r}\nBrokenPipeError: [Errno 32] Broken pipe", file=sys.stderr)
            status = 120
        sys.stderr.flush()
    finally:
        os._exit(status)


class Server:
    """The accept loop: a child per request; each caller's connection carries its signals in and its end out."""

    def __init__(self, path=SOCKET_PATH):
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.unlink(path)
        old = os.umask(0o177)
        try:
            self.listener.bind(path)
        finally:
            os.umask(old)
        self.listener.listen(128)
        self.selector.register(self.listener, selectors.EVENT_READ, ("accept", None))

    def serve_forever(self):
        while True:
            for key, _ in self.selector.select():
                kind, job = key.data
                if kind == "accept":
                    self._accept()
                elif kind == "caller":
                    self._from_caller(job)
                else:
                    self._ended(job)

    def _accept(self):
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        received = _receive(connection)
        if received is None:
            connection.close()
            return
        fds, request = received
        key, env = request[0], request[4]
        if key not in SERVED or any(name.startswith(b"LAB_") for name in env):
            for fd in fds:
                os.close(fd)
            self._reply(connection, "python")
            connection.close()
            return
        pid = os.fork()
        if pid == 0:
            _run(fds, request)
        for fd in fds:
            os.close(fd)
        job = {"pid": pid, "connection": connection, "pidfd": os.pidfd_open(pid)}
        self.selector.register(connection, selectors.EVENT_READ, ("caller", job))
        self.selector.register(job["pidfd"], selectors.EVENT_READ, ("ended", job))

    def _from_caller(self, job):
        """Signal numbers from the caller, one byte each; the connection's end means the caller is gone."""
        try:
            data = job["connection"].recv(64)
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(job["connection"])
            job["gone"] = True
            self._signal(job, signal.SIGKILL)
            return
        for signo in data:
            self._signal(job, signo)

    def _signal(self, job, signo):
        try:
            os.kill(job["pid"], signo)
        except (ProcessLookupError, ValueError, OSError):
            pass

    def _ended(self, job):
        _, status = os.waitpid(job["pid"], 0)
        self.selector.unregister(job["pidfd"])
        os.close(job["pidfd"])
        if not job.get("gone"):
            self.selector.unregister(job["connection"])
            if os.WIFSIGNALED(status):
                self._reply(job["connection"], f"signal {os.WTERMSIG(status)}")
            else:
                self._reply(job["connection"], f"exit {os.waitstatus_to_exitcode(status)}")
        job["connection"].close()

    @staticmethod
    def _reply(connection, text):
        try:
            connection.sendall(f"{text}\n".encode())
        except OSError:
            pass


def preload():
    """Import every served command (and so what it imports) before the first request."""
    for package, module in sorted(SERVED):
        importlib.import_module(f"lab.freebsd.{package}.{module}")


def main(argv):
    preload()
    Server().serve_forever()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, "/usr/libexec/lab")
    sys.exit(main(sys.argv))
