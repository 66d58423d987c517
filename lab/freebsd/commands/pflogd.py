"""pflogd(8): the pf logging daemon. The lab's pf logs nothing yet, so it keeps a valid, empty pcap file.

It writes the pcap file header (link type PFLOG) to the log file when the file is missing or empty, detaches
like the real daemon (unless -D), records its pid in /var/run/pflogd.pid, reopens the file on SIGHUP and
exits on SIGTERM.
"""

import ctypes
import os
import signal
import struct
import time

from lab.freebsd import cli

USAGE = "usage: pflogd [-Dx] [-d delay] [-f filename] [-i interface] [-p pidfile]\n              [-s snaplen] [expression]"
PIDFILE = "/var/run/pflogd.pid"
DLT_PFLOG = 117
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 116, DLT_PFLOG)
PR_SET_NAME = 15


def _prepare(path):
    with open(path, "ab") as handle:
        if handle.tell() == 0:
            handle.write(PCAP_HEADER)


def _daemonize():
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.chdir("/")


def main(argv):
    try:
        options, _ = cli.parse("pflogd", argv[1:], "Dxd:f:i:p:s:", USAGE)
    except cli.UsageError as error:
        return error.status
    flags = {letter[1] for letter, _ in options}
    values = {letter[1]: value for letter, value in options if value}
    logfile = values.get("f", "/var/log/pflog")
    pidfile = values.get("p", PIDFILE)
    try:
        _prepare(logfile)
    except OSError as error:
        cli.warnx("pflogd", f"{logfile}: {error.strerror}")
        return 1
    if "x" in flags:
        return 0
    if "D" not in flags:
        _daemonize()
    ctypes.CDLL(None).prctl(PR_SET_NAME, b"pflogd", 0, 0, 0)
    with open(pidfile, "w") as handle:
        handle.write(f"{os.getpid()}\n")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    signal.signal(signal.SIGHUP, lambda *_: _prepare(logfile))
    while not stop:
        time.sleep(1)
    try:
        os.unlink(pidfile)
    except OSError:
        pass
    return 0


