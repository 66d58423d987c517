"""ntpd(8) of FreeBSD's base (ntp 4.2.8): the Network Time Protocol daemon, as rc.d/ntpd starts it.

The lab host's clock is the machine's (a network namespace has no clock of its own), so the emulation sets no
time: it keeps what the rest of the system sees of ntpd. It reads its options as ntpd does (an unknown one:
`ntpd: illegal option -- X`, the usage, exit 1), -q sets the clock once and exits 0, otherwise it detaches
(unless -n or -d), writes its pid to the -p file, drops to the -u user[:group] and stays until SIGTERM. The config
file (-c, default /etc/ntp.conf) is not read: the lab has no time servers to reach.
"""

import grp
import os
import pwd
import signal
import sys
import time

from lab.freebsd import cli

VERSION = "ntpd 4.2.8p18-a (1)"
USAGE = ("ntpd - NTP daemon program - Ver. 4.2.8p18\n"
         "Usage:  ntpd [ -<flag> [<val>] | --<name>[{=| }<val>] ]... \\\n"
         "\t\t[ <server1> ... <serverN> ]\n"
         "Try 'ntpd --help' for more information.")
OPTIONS = "46aAbc:dD:f:gGi:I:k:l:LmnNp:P:qr:s:t:u:U:v:V:wx"


def _drop(user_group):
    user, _, group = user_group.partition(":")
    account = pwd.getpwnam(user)
    gid = grp.getgrnam(group).gr_gid if group else account.pw_gid
    os.setgroups([gid])
    os.setgid(gid)
    os.setuid(account.pw_uid)


def main(argv):
    try:
        options, _servers = cli.parse("ntpd", argv[1:], OPTIONS, USAGE)
    except cli.UsageError as error:
        return error.status
    values = {flag: value for flag, value in options}
    if "-q" in values:
        return 0  # the clock is already the machine's: nothing to step
    user = values.get("-u")
    if user is not None:
        try:
            pwd.getpwnam(user.partition(":")[0])
        except KeyError:
            print(f"Cannot find user `{user.partition(':')[0]}'", file=sys.stderr)
            return 1
    if "-n" not in values and "-d" not in values and cli.daemonise():
        return 0
    if "-p" in values:
        with open(values["-p"], "w") as handle:
            handle.write(f"{os.getpid()}\n")
    if user is not None:
        _drop(user)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    while True:
        time.sleep(3600)
