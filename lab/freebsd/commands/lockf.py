"""lockf(1) of FreeBSD: run a command while holding an flock(2) lock on a file, as usr.bin/lockf/lockf.c.

`lockf [-kns] [-t seconds] file command [arguments]`: the file is opened (created unless -n) with an exclusive
lock; -t 0 fails at once when it is held, -t N waits at most N seconds, no -t waits for ever. The command runs
in a child that does not hold the lock; lockf waits for it, ignoring SIGINT and SIGQUIT, and on SIGTERM releases
the lock and dies of the signal. The file is removed afterwards unless -k keeps it. Exit statuses (sysexits(3)):
the command's own, EX_TEMPFAIL when the lock is held ("FILE: already locked", nothing with -s), EX_USAGE,
EX_UNAVAILABLE (-n and no file), EX_CANTCREAT, EX_OSERR, EX_SOFTWARE (the command did not exit normally).
"""

import errno
import fcntl
import os
import signal
import sys
import time

from lab.freebsd import cli

USAGE = "usage: lockf [-kns] [-t seconds] file command [arguments]"
EX_TEMPFAIL = 75
EX_CANTCREAT = 73
POLL_SECONDS = 0.1


def main(argv):
    try:
        options, operands = cli.parse("lockf", argv[1:], "knst:", USAGE, status=cli.EX_USAGE)
    except cli.UsageError as error:
        return error.status
    flags = dict(options)
    keep, create, silent = "-k" in flags, "-n" not in flags, "-s" in flags
    wait = None
    if "-t" in flags:
        wait = _timeout(flags["-t"])
        if wait is None:
            cli.warnx("lockf", f'invalid timeout "{flags["-t"]}"')
            return cli.EX_USAGE
    if len(operands) < 2:
        print(USAGE, file=sys.stderr)
        return cli.EX_USAGE
    name, command = operands[0], operands[1:]
    fd = _acquire(name, create, wait)
    if isinstance(fd, int) and fd < 0:
        return -fd
    if fd is None:
        if not silent:
            cli.warnx("lockf", f"{name}: already locked")
        return EX_TEMPFAIL
    return _run(name, fd, keep, command)


def _timeout(text):
    """strtol(3) with base 0 and the whole text used; None when invalid or negative."""
    try:
        value = int(text, 0)
    except ValueError:
        return None
    return value if text and value >= 0 else None


def _acquire(name, create, wait):
    """The locked file descriptor; None when the lock stays held past `wait`; -STATUS when the file fails."""
    deadline = None if wait is None else time.monotonic() + wait
    while True:
        try:
            fd = os.open(name, os.O_RDONLY | (os.O_CREAT if create else 0), 0o666)
        except FileNotFoundError:
            if not create:
                cli.warnx("lockf", f"{name}: No such file or directory")
                return -cli.EX_UNAVAILABLE
            cli.warnx("lockf", f"cannot open {name}: No such file or directory")
            return -EX_CANTCREAT
        except OSError as error:
            cli.warnx("lockf", f"cannot open {name}: {error.strerror}")
            return -EX_CANTCREAT
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)


def _run(name, fd, keep, command):
    def cleanup():
        if keep:
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            try:
                os.unlink(name)
            except OSError:
                pass

    child = os.fork()
    if child == 0:
        os.close(fd)
        try:
            os.execvp(command[0], command)
        except OSError as error:
            cli.warnx("lockf", f"{command[0]}: {error.strerror}")
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)

    def killed(signum, frame):
        cleanup()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, killed)
    _, status = os.waitpid(child, 0)
    cleanup()
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else cli.EX_SOFTWARE
