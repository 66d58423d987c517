"""daemon(8): run a command detached from the controlling terminal, as FreeBSD's `daemon [-f] [-p pidfile]`.

The command becomes a session leader in the background; with -f its standard streams go to /dev/null, with -p its
own pid is written to the pid file (so killing that pid ends the command). The caller returns at once.
"""

import os
import sys

from lab.freebsd import cli

USAGE = ("usage: daemon [-cfHrS] [-p child_pidfile] [-P supervisor_pidfile]\n"
         "              [-u user] [-o output_file] [-t title]\n"
         "              [-m output_mask] [-R restart_delay_secs]\n"
         "              [-s syslog_priority] [-T syslog_tag]\n"
         "              [-l syslog_facility] command arguments ...")


def main(argv):
    return cli.run(_main, argv)


def _main(argv):
    opts, args = cli.parse("daemon", argv[1:], "+cfp:o:", USAGE)
    if not args:
        print(USAGE, file=sys.stderr)
        return 1
    options = dict(opts)
    if os.fork():
        return 0
    os.setsid()
    if os.fork():
        os._exit(0)
    if "-c" not in options:
        os.chdir("/")
    if "-f" in options or "-o" in options:
        null = os.open(os.devnull, os.O_RDWR)
        output = os.open(options["-o"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) if "-o" in options else null
        os.dup2(null, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
    if "-p" in options:
        with open(options["-p"], "w") as handle:
            handle.write(f"{os.getpid()}\n")
    try:
        os.execvp(args[0], args)
    except OSError as error:
        print(f"daemon: {args[0]}: {error.strerror}", file=sys.stderr)
        os._exit(1)
