"""ps(1) of FreeBSD, read from /proc: BSD options (-a -x -A -u -j -l -c -e -w -h -o/-O KEYWORDS -p PIDS
-U USERS -t TTYS -J JAILS), also without the dash in the first argument (`ps ax`), FreeBSD column headers,
`-o pid=` for no header. A lab program shows as the FreeBSD program it stands for (`init`, not `python3`).

Jails: which jail a process belongs to is the jail emulation's knowledge. When the module
lab.freebsd.jailinfo exists it is asked (`jid_of(pid) -> int`, `resolve(name_or_jid) -> int | None`);
without it every process is in the host (JID 0).
"""

import getopt
import os
import pwd
import sys
import time

USAGE = ("usage: ps [--libxo] [-aCcdefHhjlmrSTuvwXxZ] [-O fmt | -o fmt]\n"
         "          [-G gid[,gid...]] [-J jid[,jid...]] [-M core] [-N system]\n"
         "          [-p pid[,pid...]] [-t tty[,tty...]] [-U user[,user...]]\n"
         "       ps [--libxo] -L")
HEADERS = {"pid": "PID", "ppid": "PPID", "pgid": "PGID", "sid": "SID", "tpgid": "TPGID", "jid": "JID",
           "user": "USER", "ruser": "RUSER", "uid": "UID", "ruid": "RUID", "gid": "GID", "rgid": "RGID",
           "command": "COMMAND", "args": "COMMAND", "comm": "COMMAND", "ucomm": "UCOMM",
           "stat": "STAT", "state": "STAT", "tt": "TT", "tty": "TTY", "time": "TIME", "cputime": "TIME",
           "etime": "ELAPSED", "etimes": "ELAPSED", "rss": "RSS", "vsz": "VSZ", "%cpu": "%CPU", "pcpu": "%CPU",
           "%mem": "%MEM", "pmem": "%MEM", "nice": "NI", "ni": "NI", "pri": "PRI", "lstart": "STARTED",
           "start": "STARTED", "wchan": "WCHAN", "lwp": "LWP", "nlwp": "NLWP", "login": "LOGIN"}
RIGHT = {"pid", "ppid", "pgid", "sid", "tpgid", "jid", "uid", "ruid", "gid", "rgid", "time", "cputime", "etime",
         "etimes", "rss", "vsz", "%cpu", "pcpu", "%mem", "pmem", "nice", "ni", "pri", "lwp", "nlwp"}
DEFAULT = "pid,tt,stat,time,command"
LAUNCHER = "/usr/libexec/lab/bin/python3"
SERVED_LAUNCHER = "/usr/libexec/lab/bin/labcmd"  # `labcmd "PACKAGE MODULE" SCRIPT ARGS` (lab.freebsd.commandd)
# The lab's resident command server (and its children while they start) is the lab's, not a process of FreeBSD.
COMMAND_SERVER = "lab-commandd"
# A lab jail's first process (and the unshare that started it) stands for the kernel's prison, not a process.
JAIL_HOLDER = "lab.freebsd.jailinit"
COMMLEN = 19  # MAXCOMLEN: the kernel keeps 19 characters of a command's name
FORMATS = {"u": "user,pid,%cpu,%mem,vsz,rss,tt,stat,start,time,command",
           "j": "user,pid,ppid,pgid,sid,jobc,stat,tt,time,command",
           "l": "uid,pid,ppid,cpu,pri,nice,vsz,rss,mwchan,stat,tt,time,command",
           "v": "pid,stat,time,sl,re,pagein,vsz,rss,lim,tsiz,%cpu,%mem,command"}
HEADERS.update({"jobc": "JOBC", "cpu": "C", "mwchan": "MWCHAN", "sl": "SL", "re": "RE", "pagein": "PAGEIN",
                "lim": "LIM", "tsiz": "TSIZ"})
RIGHT |= {"jobc", "cpu", "sl", "re", "pagein", "tsiz"}


def _jail_hooks():
    try:
        from lab.freebsd import jailinfo
    except ImportError:
        return (lambda pid: 0), (lambda spec: 0 if spec == "0" else None)
    return jailinfo.jid_of, jailinfo.resolve


class Process:
    def __init__(self, pid):
        self.pid = pid
        with open(f"/proc/{pid}/stat") as handle:
            raw = handle.read()
        self.comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        self.state, self.ppid, self.pgid, self.sid = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
        self.tty_nr, self.tpgid = int(fields[4]), int(fields[5])
        ticks = os.sysconf("SC_CLK_TCK")
        self.cpu_seconds = (int(fields[11]) + int(fields[12])) / ticks
        self.nice, self.nlwp = int(fields[16]), int(fields[17])
        self.start = int(fields[19]) / ticks
        self.vsz, self.rss = int(fields[20]) // 1024, int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            args = handle.read().rstrip(b"\0").split(b"\0")
        args = [a.decode(errors="replace") for a in args if a]
        self.lab_internal = JAIL_HOLDER in args or COMMAND_SERVER in args
        if (args[:2] == [LAUNCHER, "-IS"] or args[:1] == [SERVED_LAUNCHER]) and len(args) > 2:
            args = args[2:]  # a lab program shows as what it stands for: /bin/ps, not its interpreter
            self.comm = os.path.basename(args[0])[:COMMLEN]
        self.args = " ".join(args) or f"[{self.comm}]"
        with open(f"/proc/{pid}/status") as handle:
            status = dict(line.split(":", 1) for line in handle if ":" in line)
        self.ruid, self.uid = (int(x) for x in status["Uid"].split()[:2])
        self.rgid, self.gid = (int(x) for x in status["Gid"].split()[:2])

    @property
    def tty(self):
        if self.tty_nr == 0:
            return None
        major, minor = os.major(self.tty_nr), os.minor(self.tty_nr)
        return f"{minor}" if major == 136 else f"v{minor}"


def _user(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _clock(seconds):
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}:{secs:05.2f}"


def _elapsed(seconds):
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{minutes:02d}:{secs:02d}"
    if hours or days:
        text = f"{hours:02d}:{text}"
    if days:
        text = f"{days}-{text}"
    return text


def value(proc, key, jid_of, uptime, mem_total):
    if key in ("command", "args"):
        return proc.args
    if key in ("comm", "ucomm"):
        return proc.comm
    if key in ("stat", "state"):
        letter = {"R": "R", "S": "S", "D": "D", "Z": "Z", "T": "T", "t": "T", "I": "I", "X": "Z"}.get(proc.state, "?")
        flags = ""
        if proc.nice < 0:
            flags += "<"
        elif proc.nice > 0:
            flags += "N"
        if proc.pid == proc.sid:
            flags += "s"
        if jid_of(proc.pid):
            flags += "J"
        if proc.tty_nr and proc.pgid == proc.tpgid:
            flags += "+"
        return letter + flags
    if key in ("tt", "tty"):
        return proc.tty or "-"
    if key in ("time", "cputime"):
        return _clock(proc.cpu_seconds)
    if key == "etime":
        return _elapsed(uptime - proc.start)
    if key == "etimes":
        return str(int(uptime - proc.start))
    if key in ("user", "ruser", "login"):
        return _user(proc.uid if key != "ruser" else proc.ruid)
    if key in ("lstart", "start"):
        started = time.time() - (uptime - proc.start)
        return time.strftime("%a %b %e %T %Y" if key == "lstart" else "%H:%M", time.localtime(started))
    if key in ("%mem", "pmem"):
        return f"{100.0 * proc.rss / mem_total:.1f}"
    if key in ("%cpu", "pcpu"):
        running = max(uptime - proc.start, 1)
        return f"{100.0 * proc.cpu_seconds / running:.1f}"
    if key == "jid":
        return str(jid_of(proc.pid))
    if key in ("mwchan", "wchan"):
        return "-"
    numbers = {"pid": proc.pid, "ppid": proc.ppid, "pgid": proc.pgid, "sid": proc.sid, "tpgid": proc.tpgid,
               "uid": proc.uid, "ruid": proc.ruid, "gid": proc.gid, "rgid": proc.rgid, "rss": proc.rss,
               "vsz": proc.vsz, "nice": proc.nice, "ni": proc.nice, "nlwp": proc.nlwp, "lwp": proc.pid,
               "pri": 20 + proc.nice, "jobc": 0, "cpu": 0, "sl": 0, "re": 0, "pagein": 0, "tsiz": 0}
    if key in numbers:
        return str(numbers[key])
    if key == "lim":
        return "-"
    raise KeyError(key)


def _columns(spec):
    columns = []
    for item in spec.replace(" ", ",").split(","):
        if not item:
            continue
        key, sep, header = item.partition("=")
        if key not in HEADERS:
            raise KeyError(key)
        columns.append((key, header if sep else HEADERS[key]))
    return columns


def old_style(argv):
    """FreeBSD's ps takes its first argument without a dash (`ps ax`, `ps auxww`), trailing digits being a pid."""
    if len(argv) < 2 or argv[1].startswith("-") or argv[1].isdigit():
        return argv
    letters = argv[1].rstrip("0123456789")
    pid = argv[1][len(letters):]
    return argv[:1] + ["-" + letters] + (["-p", pid] if pid else []) + argv[2:]


def main(argv):
    argv = old_style(argv)
    try:
        opts, args = getopt.getopt(argv[1:], "aAcCdefG:hHjJ:lLmM:N:o:O:p:rSt:TuU:vwxXZ")
    except getopt.GetoptError as err:
        print(f"ps: illegal option -- {err.opt}", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 1
    jid_of, resolve = _jail_hooks()
    all_users = no_tty = False
    spec, extra, pids, users, ttys, jails, command_only = None, [], [], [], [], [], False
    for opt, val in opts:
        flag = opt[1]
        if flag == "a":
            all_users = True
        elif flag == "x":
            no_tty = True
        elif flag == "A":
            all_users = no_tty = True
        elif flag == "c":
            command_only = True
        elif flag in "ujlv":
            spec = (spec + "," if spec else "") + FORMATS[flag]
        elif flag == "o":
            spec = (spec + "," if spec else "") + val
        elif flag == "O":
            extra.append(val)
        elif flag == "p":
            pids += [int(p) for p in val.replace(",", " ").split() if p.isdigit()]
        elif flag == "U":
            users += val.replace(",", " ").split()
        elif flag == "t":
            ttys += val.replace(",", " ").split()
        elif flag == "J":
            for item in val.replace(",", " ").split():
                jid = resolve(item)
                if jid is None:
                    print(f"ps: Invalid jail id: {item}", file=sys.stderr)
                    return 1
                jails.append(jid)
        elif flag in "MNL":
            print(f"ps: -{flag}: not available on this system", file=sys.stderr)
            return 1
    if args and all(a.isdigit() for a in args):
        pids += [int(a) for a in args]
    elif args:
        print(USAGE, file=sys.stderr)
        return 1
    try:
        columns = _columns(spec or DEFAULT)
        if extra:
            keys = [k for k, _ in columns]
            at = keys.index("pid") + 1 if "pid" in keys else 1
            columns[at:at] = _columns(",".join(extra))
    except KeyError as err:
        print(f"ps: {err.args[0]}: keyword not found", file=sys.stderr)
        print("ps: no valid keywords; valid keywords:", file=sys.stderr)
        return 1
    if command_only:
        columns = [(("comm" if k in ("command", "args") else k), h) for k, h in columns]
    with open("/proc/uptime") as handle:
        uptime = float(handle.read().split()[0])
    with open("/proc/meminfo") as handle:
        mem_total = int(handle.readline().split()[1])
    me = os.getuid()
    rows = []
    for entry in sorted((int(p) for p in os.listdir("/proc") if p.isdigit())):
        try:
            proc = Process(entry)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if proc.lab_internal:
            continue
        if pids or users or ttys or jails:
            if pids and proc.pid not in pids:
                continue
            if users and _user(proc.uid) not in users and str(proc.uid) not in users:
                continue
            if ttys and (proc.tty or "-") not in ttys:
                continue
            if jails and jid_of(proc.pid) not in jails:
                continue
        else:
            if not all_users and proc.uid != me:
                continue
            if not no_tty and proc.tty is None:
                continue
        try:
            rows.append([value(proc, key, jid_of, uptime, mem_total) for key, _ in columns])
        except (FileNotFoundError, ProcessLookupError):
            continue
    headers = [header for _, header in columns]
    show_header = any(headers)
    table = ([headers] if show_header else []) + rows
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    for row in table:
        cells = []
        for i, (key, _) in enumerate(columns):
            last = i == len(columns) - 1
            if key in RIGHT:
                cells.append(row[i].rjust(widths[i]))
            else:
                cells.append(row[i] if last else row[i].ljust(widths[i]))
        print(" ".join(cells).rstrip())
    return 0 if rows else 1
