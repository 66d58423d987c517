"""Command-line plumbing shared by the emulated FreeBSD commands: BSD getopt(3) behaviour (options stop at the
first operand, an unknown option is "illegal option -- X"), sh(1) getopts as FreeBSD's shell scripts use it,
err(3)/warnx(3) style messages, and the exit codes
of sysexits(3) that FreeBSD tools use.
"""

import getopt
import os
import sys

EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_OSERR = 71
EX_IOERR = 74


class UsageError(Exception):
    """Raised after a usage message was printed; carries the exit status the real tool uses."""

    def __init__(self, status=1):
        super().__init__(status)
        self.status = status


def child_status(argv):
    """The exit status of argv (found on PATH) run as a child. Spawned directly: importing the subprocess module
    alone costs a command as much as the interpreter's start."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def progname(argv):
    return os.path.basename(argv[0]) if argv else "?"


def warnx(prog, message):
    print(f"{prog}: {message}", file=sys.stderr)


def parse(prog, args, optstring, usage, status=1):
    """getopt(3) as FreeBSD has it; on a bad option print FreeBSD's messages and the usage text, and raise."""
    try:
        return getopt.getopt(args, optstring)
    except getopt.GetoptError as error:
        if error.msg.startswith("option -") and "requires argument" in error.msg:
            warnx(prog, f"option requires an argument -- {error.opt}")
        else:
            warnx(prog, f"illegal option -- {error.opt}")
        print(usage, file=sys.stderr)
        raise UsageError(status)


def getopts(args, optstring, usage, status=1):
    """sh(1)'s getopts as FreeBSD's shell scripts of base (sysrc, local-unbound-setup) loop over it: on a bad
    option print sh's message (no program name; `--foo` is the illegal letter `-`) and the usage text, and raise."""
    try:
        return getopt.getopt(args, optstring)
    except getopt.GetoptError as error:
        if error.msg.startswith("option --"):
            print("Illegal option --", file=sys.stderr)
        elif "requires argument" in error.msg:
            print(f"No arg for -{error.opt} option", file=sys.stderr)
        else:
            print(f"Illegal option -{error.opt}", file=sys.stderr)
        print(usage, file=sys.stderr)
        raise UsageError(status)


def humanize(number, length, flags_b=True, decimal=True):
    """humanize_number(3) with HN_AUTOSCALE | HN_NOSPACE (and HN_B, HN_DECIMAL): `length` is the buffer size
    including the terminating NUL, as the C callers pass it."""
    prefixes = ["B" if flags_b else "", "K", "M", "G", "T", "P", "E"]
    divisor, deccut = 1024, 973
    sign = -1 if number < 0 else 1
    quotient = abs(number)
    baselen = 3 if sign < 0 else 2
    maximum = 10 ** (length - baselen)
    remainder = 0
    scale = 0
    while (quotient >= maximum or (quotient == maximum - 1 and remainder >= deccut)) and scale < 6:
        remainder = quotient % divisor
        quotient //= divisor
        scale += 1
    if decimal and scale > 0 and ((quotient == 9 and remainder < deccut) or quotient < 9):
        s1 = quotient + ((remainder * 10 + divisor // 2) // divisor // 10)
        s2 = ((remainder * 10 + divisor // 2) // divisor) % 10
        text = f"{sign * s1}.{s2}{prefixes[scale]}"
    else:
        text = f"{sign * (quotient + (remainder + divisor // 2) // divisor)}{prefixes[scale]}"
    return text[: length - 1]


def run(main_function, argv):
    """Run a command body that may raise UsageError, returning its exit status."""
    try:
        return main_function(argv)
    except UsageError as error:
        return error.status


LINUX_TOOL_DIRS = ("/usr/libexec/lab/bin", "/usr/sbin", "/sbin", "/usr/bin", "/bin")


def linux_tool(name):
    """Path of a Linux program the emulation runs underneath (e2fsprogs...): the lab keeps them off PATH."""
    for directory in LINUX_TOOL_DIRS:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(name)


def daemonise():
    """daemon(3) with nochdir=0, noclose=0: True in the process that returns to the caller, False in the daemon,
    detached (its own session, cwd /, standard streams on /dev/null)."""
    if os.fork():
        return True
    os.setsid()
    if os.fork():
        os._exit(0)
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    return False
