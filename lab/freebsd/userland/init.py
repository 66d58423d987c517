"""init(8) of a lab host: PID 1 inside the lab host's PID namespace.

It runs /etc/rc (the boot) with the console as output, then reaps orphaned processes forever. The lab
powers a host off by killing this process, which ends every process of the lab host at once.
"""

import os
import signal
import subprocess
import sys
import time

COMMAND_SERVER = "/usr/libexec/lab/lab/freebsd/commandd.py"


def _ignore(signum, frame):
    pass


def main(argv):
    if os.getpid() != 1:
        print("init: already running", file=sys.stderr)
        return 1
    # Caught, not ignored, as FreeBSD's init catches them: an ignored signal stays ignored across exec, and every
    # daemon of the boot would then outlive its rc.d script's SIGTERM.
    signal.signal(signal.SIGTERM, _ignore)
    signal.signal(signal.SIGINT, _ignore)
    env = {"PATH": "/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin", "HOME": "/", "TERM": "dumb"}
    # The lab's resident command server (lab.freebsd.commandd) comes first: the boot's commands start faster.
    subprocess.Popen([sys.executable, "-IS", COMMAND_SERVER, "lab-commandd"], env=env, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/", start_new_session=True)
    rc = subprocess.Popen(["/bin/sh", "/etc/rc", "autoboot"], env=env, stdin=subprocess.DEVNULL, cwd="/")
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            time.sleep(1)  # no child now: orphans may be handed to init later
            continue
        if pid == rc.pid and os.waitstatus_to_exitcode(status) != 0:
            # FreeBSD's /etc/rc always exits 0; init says this only when it does not (where FreeBSD would go to
            # single-user mode, the lab host stays up with what the boot started).
            print("init: /etc/rc terminated abnormally", flush=True)
