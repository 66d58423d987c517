"""service(8): run an rc.d script of /etc/rc.d or /usr/local/etc/rc.d with a clean environment, list the
scripts (-l), the boot order (-r) or the enabled ones (-e), or do any of that inside a jail (-j).

As FreeBSD's service(8), a shell script, it becomes what it runs: `exec env -i HOME=/ PATH=... SCRIPT ARGS`
for one script, `exec jexec -l JAIL /usr/sbin/service ARGS` for a jail. Only -e and -R run scripts as
children (cli.child_status). It works in /, as every rc.d script expects.
"""

import os
import sys

from lab.freebsd import cli, rcorder

USAGE = """usage: service [-j <jail name or id>] -e
       service [-j <jail name or id>] -R
       service [-j <jail name or id>] [-v] -l | -r
       service [-j <jail name or id>] [-v] <rc.d script> start|stop|etc.
       service -h"""
RC_DIRS = ("/etc/rc.d", "/usr/local/etc/rc.d")
CLEAN_ENV = {"HOME": "/", "PATH": "/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin"}
ENABLED_CHECK = """
. /etc/rc.subr
eval "$(grep -E '^name=' "$1" | head -n 1)"
eval "$(grep -E '^rcvar=' "$1" | head -n 1)"
[ -n "$rcvar" ] || exit 1
load_rc_config "$name"
checkyesno "$rcvar" 2>/dev/null
"""


def main(argv):
    return cli.run(_main, argv)


def scripts():
    paths = []
    for directory in RC_DIRS:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        paths += [os.path.join(directory, name) for name in names
                  if os.path.isfile(os.path.join(directory, name)) and not name.startswith(".")]
    return paths


def boot_order():
    return rcorder.order(scripts(), warn=lambda text: cli.warnx("rcorder", text))


def enabled(path):
    return cli.child_status(["/bin/sh", "-c", ENABLED_CHECK, "sh", path], CLEAN_ENV, quiet=True) == 0


def _main(argv):
    opts, args = cli.parse("service", argv[1:], "ehj:lrRv", USAGE)
    os.chdir("/")
    flags = {opt for opt, _value in opts}
    jail = dict(opts).get("-j")
    if "-h" in flags:
        print(USAGE, file=sys.stderr)
        return 0
    if jail is not None:
        rest = [opt if not value else f"{opt}{value}" for opt, value in opts if opt != "-j"] + args
        sys.stdout.flush()
        os.execv("/usr/sbin/jexec", ["jexec", "-l", jail, "/usr/sbin/service", *rest])
    if "-e" in flags:
        for path in boot_order():
            if enabled(path):
                print(path)
        return 0
    if "-l" in flags:
        for name in sorted({os.path.basename(path) for path in scripts()}):
            print(name)
        return 0
    if "-r" in flags:
        for path in boot_order():
            print(path)
        return 0
    if "-R" in flags:
        status = 0
        for path in boot_order():
            if path.startswith("/usr/local/etc/rc.d/") and enabled(path):
                if "-v" in flags:
                    print(f"{path} is located in {os.path.dirname(path)}")
                status |= cli.child_status([path, "restart"], CLEAN_ENV)
        return status
    if not args:
        print(USAGE, file=sys.stderr)
        return 1
    script = args[0]
    for directory in RC_DIRS:
        path = os.path.join(directory, script)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            run(path, args[1:], "-v" in flags)
    print(f"{script} does not exist in /etc/rc.d or the local startup", file=sys.stderr)
    print("directories (/usr/local/etc/rc.d), or is not executable", file=sys.stderr)
    return 1


def run(path, arguments, verbose):
    """Become the script, in / with the clean environment (never returns)."""
    if verbose:
        print(f"{path} is located in {os.path.dirname(path)}")
    sys.stdout.flush()
    os.execve(path, [path, *arguments], CLEAN_ENV)
