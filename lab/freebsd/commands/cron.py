"""cron(8) of FreeBSD (Vixie cron): run the commands of the system crontabs at the minutes they name.

Reads /etc/crontab and every regular file of /etc/cron.d and /usr/local/etc/cron.d whose name does not start
with a dot, in crontab(5)'s system format: `minute hour mday month wday user command`, with `*`, lists, ranges,
steps, month and weekday names (weekday 0 or 7 is Sunday), the @yearly/@annually/@monthly/@weekly/@daily/
@midnight/@hourly/@reboot shorthands, NAME=VALUE environment lines and `%` in a command (the first unescaped
one starts standard input, the next ones are newlines). When both mday and wday are restricted, either may match.
A line it cannot read is skipped, as cron skips it. Crontabs are read again every minute. Each job runs as
its user in `$SHELL -c` (SHELL=/bin/sh, PATH=/usr/bin:/bin, HOME, LOGNAME and USER unless the crontab sets
them). cron daemonises unless -n and keeps its pid in /var/run/cron.pid (a second one: "cron already running").
The lab has no mail: what a job prints is discarded instead of mailed. Per-user crontabs (/var/cron/tabs) and
the jitter, DST and debug options are accepted but not acted on.
"""

import fcntl
import os
import pwd
import re
import signal
import sys
import time

from lab.freebsd import cli

USAGE = ("usage: cron [-j jitter] [-J rootjitter] [-m mailto] [-n ] [-s] [-o] [-x debugflag[,...]]")
PIDFILE = "/var/run/cron.pid"
SYSTEM_TABS = ["/etc/crontab"]
TAB_DIRS = ["/etc/cron.d", "/usr/local/etc/cron.d"]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (low, high, names) of minute, hour, day of month, month, day of week (7 is Sunday again)
FIELDS = [(0, 59, None), (0, 23, None), (1, 31, None), (1, 12, MONTHS), (0, 7, DAYS)]
SHORTHANDS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
              "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
ENVIRONMENT = re.compile(r"""^\s*([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|(.*?))\s*$""")


def main(argv):
    try:
        options, operands = cli.parse("cron", argv[1:], "j:J:m:nsox:", USAGE)
    except cli.UsageError as error:
        return error.status
    if operands:
        print(USAGE, file=sys.stderr)
        return 1
    foreground = ("-n", "") in options
    if not foreground and cli.daemonise():
        return 0
    lock = os.open(PIDFILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        other = os.pread(lock, 32, 0).decode().strip()
        cli.warnx("cron", f"cron already running, pid: {other}")
        return 1
    os.ftruncate(lock, 0)
    os.pwrite(lock, f"{os.getpid()}\n".encode(), 0)
    signal.signal(signal.SIGCHLD, _reap)
    for entry in load_entries():
        if entry["reboot"]:
            _run(entry)
    while True:
        now = time.time()
        time.sleep(60 - now % 60)
        minute = time.localtime(time.time() + 0.5)
        for entry in load_entries():
            if not entry["reboot"] and matches(entry, minute):
                _run(entry)



def _reap(signum, frame):
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


# ----------------------------------------------------------------------------------------- crontabs

def load_entries():
    """Every entry of the system crontabs, in the order cron reads them."""
    paths = [path for path in SYSTEM_TABS if os.path.isfile(path)]
    for directory in TAB_DIRS:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        paths += [os.path.join(directory, name) for name in names
                  if not name.startswith(".") and os.path.isfile(os.path.join(directory, name))]
    entries = []
    for path in paths:
        try:
            with open(path) as handle:
                entries += parse_crontab(handle.read())
        except OSError:
            continue
    return entries


def parse_crontab(text):
    """The entries of one system crontab, each with the environment set above it."""
    environment, entries = {}, []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        variable = ENVIRONMENT.match(line)
        if variable and not line.lstrip()[0].isdigit() and not line.lstrip().startswith(("*", "@")):
            environment[variable.group(1)] = next(v for v in variable.groups()[1:] if v is not None)
            continue
        entry = parse_entry(line)
        if entry:
            entries.append(dict(entry, environment=dict(environment)))
    return entries


def parse_entry(line):
    """One `TIME user command` line, or None when cron would skip it."""
    words = line.split(None, 1)
    reboot = words[0] == "@reboot"
    if words[0].startswith("@"):
        if not reboot and words[0] not in SHORTHANDS:
            return None
        schedule, rest = ("* * * * *" if reboot else SHORTHANDS[words[0]]).split(), words[1] if len(words) > 1 else ""
    else:
        parts = line.split(None, 5)
        if len(parts) < 6:
            return None
        schedule, rest = parts[:5], parts[5]
    user_command = rest.split(None, 1)
    if len(user_command) < 2:
        return None
    user, command = user_command
    try:
        pwd.getpwnam(user)
        sets = [_field(text, *bounds) for text, bounds in zip(schedule, FIELDS)]
    except (KeyError, ValueError):
        return None
    sets[4] = {0 if day == 7 else day for day in sets[4]}
    return {"sets": sets, "dom_star": schedule[2].startswith("*"), "dow_star": schedule[4].startswith("*"),
            "user": user, "command": command, "reboot": reboot}


def _field(text, low, high, names):
    values = set()
    for item in text.split(","):
        spec, _, step = item.partition("/")
        step = int(step) if step else 1
        if step < 1:
            raise ValueError(item)
        if spec == "*":
            first, last = low, high
        else:
            start, dash, end = spec.partition("-")
            first = _number(start, low, high, names)
            if not dash and "/" in item:
                raise ValueError(item)  # a step follows a range or *, never a single number
            last = _number(end, low, high, names) if dash else first
            if first > last:
                raise ValueError(item)
        values |= set(range(first, last + 1, step))
    return values


def _number(text, low, high, names):
    if names and text.lower() in names:
        return names.index(text.lower()) + (1 if names is MONTHS else 0)
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(text)
    return int(text)


def matches(entry, moment):
    minute, hour, dom, month, dow = entry["sets"]
    weekday = (moment.tm_wday + 1) % 7  # time.struct_time counts from Monday, cron from Sunday
    day = moment.tm_mday in dom, weekday in dow
    day_matches = (day[0] and day[1]) if entry["dom_star"] or entry["dow_star"] else (day[0] or day[1])
    return moment.tm_min in minute and moment.tm_hour in hour and moment.tm_mon in month and day_matches


# ----------------------------------------------------------------------------------------- jobs

def split_command(command):
    """(command, standard input) of a crontab command: `%` starts the input, `\\%` is a plain %."""
    out, text, escaped = [], command, False
    for index, char in enumerate(text):
        if escaped:
            out.append(char if char == "%" else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            return "".join(out), text[index + 1:].replace("%", "\n") + "\n"
        else:
            out.append(char)
    return "".join(out) + ("\\" if escaped else ""), ""


def _run(entry):
    if os.fork():
        return
    try:
        account = pwd.getpwnam(entry["user"])
        environment = {"SHELL": "/bin/sh", "PATH": "/usr/bin:/bin", "HOME": account.pw_dir,
                       "LOGNAME": account.pw_name, "USER": account.pw_name, **entry["environment"]}
        command, stdin = split_command(entry["command"])
        os.setsid()
        os.setgid(account.pw_gid)
        os.initgroups(account.pw_name, account.pw_gid)
        os.setuid(account.pw_uid)
        os.chdir(environment["HOME"])
        read, write = os.pipe()
        os.write(write, stdin.encode())
        os.close(write)
        os.dup2(read, 0)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.execve(environment["SHELL"], [environment["SHELL"], "-c", command], environment)
    finally:
        os._exit(1)
