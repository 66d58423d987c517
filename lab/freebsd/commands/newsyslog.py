"""newsyslog(8) of FreeBSD: rotate the log files its configuration names when they grow past their size.

The configuration is newsyslog.conf(5): /etc/newsyslog.conf (or -f FILE) with its `<include>` lines (globs, as
FreeBSD's default one includes /etc/newsyslog.conf.d/[!.]*.conf and /usr/local/etc/newsyslog.conf.d/[!.]*.conf),
entries `logfilename [owner:group] mode count size when flags [/pid_file] [sig_num]`. A malformed entry stops
newsyslog before anything is rotated, as FreeBSD's does (errx: exit 1). A log is rotated when its size in
kilobytes reaches `size` (or with -F); `when` other than `*` (time-based rotation) is read and not acted upon in the
lab. Rotation: the oldest archive removed, the others shifted (NAME.0 -> NAME.1 ...), the log moved to NAME.0, a
new empty log created with the entry's owner, group and mode, the daemon in pid_file signalled (sig_num, SIGHUP
by default; not with the N flag), then NAME.0 compressed (J: bzip2, Z: gzip, X: xz). -n prints what would be
done, -v says what it looks at, -C creates missing logs whose entry has the C flag.
"""

import bz2
import glob
import grp
import gzip
import lzma
import os
import pwd
import shutil
import signal
import sys

from lab.freebsd import cli

USAGE = ("usage: newsyslog [-CFNPnrsv] [-a directory] [-d directory] [-f config_file]\n"
         "                 [-S pidfile] [-t timefmt] [[-R tagname] file ...]")
DEFAULT_CONFIG = "/etc/newsyslog.conf"
COMPRESSORS = {"J": (".bz2", bz2.open), "Z": (".gz", gzip.open), "X": (".xz", lzma.open)}
KNOWN_FLAGS = set("BCDEGJNpRTUXYZ-")


class ConfigError(Exception):
    pass


class Entry:
    def __init__(self, fields, line):
        self.log = fields.pop(0)
        self.uid = self.gid = -1
        if fields and ":" in fields[0] and not fields[0].isdigit():
            owner, _, group = fields.pop(0).partition(":")
            self.uid = _lookup(pwd.getpwnam, owner, "user", line).pw_uid if owner else -1
            self.gid = _lookup(grp.getgrnam, group, "group", line).gr_gid if group else -1
        if len(fields) < 4:
            raise ConfigError(f"malformed line (missing fields):\n{line}")
        mode, count, size, self.when = fields[:4]
        rest = fields[4:]
        try:
            self.mode = int(mode, 8)
        except ValueError:
            raise ConfigError(f"error in config file; bad value for mode:\n{line}") from None
        if not count.isdigit():
            raise ConfigError(f"error in config file; bad value for count of logs to save:\n{line}")
        self.count = int(count)
        if size != "*" and not size.isdigit():
            raise ConfigError(f"error in config file; bad value for size of log file:\n{line}")
        self.size = -1 if size == "*" else int(size)
        self.flags = ""
        if rest and not rest[0].startswith("/"):
            self.flags = rest.pop(0)
            for flag in self.flags:
                if flag not in KNOWN_FLAGS:
                    raise ConfigError(f"illegal flag in config file -- {flag}")
        self.pid_file = rest.pop(0) if rest and rest[0].startswith("/") else None
        self.sig = signal.SIGHUP
        if rest:
            try:
                self.sig = int(rest.pop(0))
            except ValueError:
                raise ConfigError(f"error in config file; bad value for signal:\n{line}") from None
        self.compress = next((flag for flag in self.flags if flag in COMPRESSORS), "")

    def tag(self):
        return f"{self.log} <{self.count}{self.compress}>"


def _lookup(function, name, kind, line):
    try:
        return function(name)
    except KeyError:
        raise ConfigError(f"error in config file; unknown {kind}:\n{line}") from None


def read_config(path, seen=None):
    seen = seen if seen is not None else set()
    if path in seen:
        return []
    seen.add(path)
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from None
    entries = []
    for line in lines:
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            continue
        if stripped.startswith("<include>"):
            for included in sorted(glob.glob(stripped[len("<include>"):].strip())):
                entries += read_config(included, seen)
            continue
        entries.append(Entry(stripped.split(), line))
    return entries


def _kilobytes(path):
    return (os.stat(path).st_size + 1023) >> 10


def _archives(entry, index):
    return [f"{entry.log}.{index}{suffix}" for suffix in ("", ".bz2", ".gz", ".xz", ".zst")]


def rotate(entry, noaction):
    def act(description, function, *args):
        if noaction:
            print(description)
        else:
            function(*args)

    for path in _archives(entry, max(entry.count - 1, 0)):
        if os.path.exists(path):
            act(f"rm -f {path}", os.unlink, path)
    for index in range(entry.count - 2, -1, -1):
        for source, target in zip(_archives(entry, index), _archives(entry, index + 1)):
            if os.path.exists(source):
                act(f"mv {source} {target}", os.rename, source, target)
    archive = f"{entry.log}.0"
    act(f"mv {entry.log} {archive}", os.rename, entry.log, archive)
    act(f"Start new log...", create, entry)
    if entry.pid_file and "N" not in entry.flags:
        act(f"kill -{entry.sig} `cat {entry.pid_file}`", notify, entry)
    if entry.compress and entry.count > 0:
        suffix, opener = COMPRESSORS[entry.compress]
        act(f"compress {archive} -> {archive}{suffix}", compress, archive, suffix, opener)


def create(entry):
    descriptor = os.open(entry.log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, entry.mode)
    try:
        os.fchown(descriptor, entry.uid, entry.gid)
        os.fchmod(descriptor, entry.mode)
    finally:
        os.close(descriptor)


def notify(entry):
    try:
        with open(entry.pid_file) as handle:
            pid = int(handle.readline().strip())
    except (OSError, ValueError):
        cli.warnx("newsyslog", f"can't open pid file: {entry.pid_file}")
        return
    try:
        os.kill(pid, entry.sig)
    except ProcessLookupError:
        cli.warnx("newsyslog", f"pid {pid} from {entry.pid_file}: no such process")


def compress(archive, suffix, opener):
    stat = os.stat(archive)
    with open(archive, "rb") as source, opener(archive + suffix, "wb") as target:
        shutil.copyfileobj(source, target)
    os.chown(archive + suffix, stat.st_uid, stat.st_gid)
    os.chmod(archive + suffix, stat.st_mode & 0o7777)
    os.unlink(archive)


def main(argv):
    prog = "newsyslog"
    try:
        opts, files = cli.parse(prog, argv[1:], "a:d:f:nrst:vCD:FNPR:S:", USAGE)
    except cli.UsageError as error:
        return error.status
    options = dict(opts)
    noaction, verbose, force = "-n" in options, "-v" in options, "-F" in options
    try:
        entries = read_config(options.get("-f", DEFAULT_CONFIG))
    except ConfigError as error:
        cli.warnx(prog, str(error))
        return 1
    if files:
        entries = [entry for entry in entries if entry.log in files]
    for entry in entries:
        if verbose:
            print(f"{entry.tag()}: ", end="")
        if not os.path.exists(entry.log):
            if "-C" in options and "C" in entry.flags:
                if verbose:
                    print("does not exist -> will create.")
                if not noaction:
                    create(entry)
            elif verbose:
                print("does not exist, skipped.")
            continue
        size = _kilobytes(entry.log)
        if verbose and entry.size > 0:
            print(f"size (Kb): {size} [{entry.size}] ", end="")
        if force or 0 < entry.size <= size:
            if verbose:
                print("--> trimming log....")
            elif noaction:
                print(f"{entry.tag()}: trimming")
            rotate(entry, noaction)
        elif verbose:
            print("--> skipping")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
