"""stat(1) of FreeBSD: `-f FORMAT` with BSD format sequences (%Su %Sg %Sp %Lp %z %m %N %SY %HT ...), -L, -n, -q,
-r, -s, -t, -x and the default line. GNU's `-c` does not exist here: "stat: illegal option -- c".

A format sequence is % [#+-0 space]* [size] [.prec] [S|D|O|U|X (output form)] [H|M|L (piece)] FIELD.
"""

import getopt
import grp
import os
import pwd
import re
import stat as st
import sys
import time

USAGE = "usage: stat [-FLnq] [-f format | -l | -r | -s | -x] [-t timefmt] [file|handle ...]"
DEFAULT_FORMAT = '%d %i %Sp %l %Su %Sg %r %z "%Sa" "%Sm" "%Sc" "%SB" %k %b %#Xf %N'
RAW_FORMAT = "%d %i %#p %l %u %g %r %z %a %m %c %B %k %b %f %N"
SHELL_FORMAT = ("st_dev=%d st_ino=%i st_mode=%#p st_nlink=%l st_uid=%u st_gid=%g st_rdev=%r st_size=%z "
                "st_atime=%a st_mtime=%m st_ctime=%c st_birthtime=%B st_blksize=%k st_blocks=%b st_flags=%f")
LS_FORMAT = "%Sp %l %Su %Sg %Z %Sm %N%SY"
DEFAULT_TIMEFMT = "%b %e %H:%M:%S %Y"
SEQUENCE = re.compile(r"%([#+\-0 ]*)(\d*)(?:\.(\d+))?([SDOUX]?)([HML]?)(.)")
TYPE_LONG = {st.S_IFDIR: "Directory", st.S_IFCHR: "Character Device", st.S_IFBLK: "Block Device",
             st.S_IFREG: "Regular File", st.S_IFLNK: "Symbolic Link", st.S_IFSOCK: "Socket", st.S_IFIFO: "Fifo File"}
TYPE_CHAR = {st.S_IFDIR: "/", st.S_IFLNK: "@", st.S_IFSOCK: "=", st.S_IFIFO: "|"}


class FormatError(Exception):
    pass


def _user(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _number(value, form, flags):
    if form == "O":
        return ("0" if "#" in flags and value else "") + format(value, "o")
    if form == "X":
        return ("0x" if "#" in flags else "") + format(value, "x")
    if form == "U":
        return str(value & 0xFFFFFFFFFFFFFFFF)
    return ("+" if "+" in flags and value >= 0 else "") + str(value)


def render(fmt, path, info, timefmt):
    mode = info.st_mode

    def field(match):
        flags, width, prec, form, piece, char = match.groups()
        if char == "%":
            return "%"
        if char == "n":
            return "\n"
        if char == "t":
            return "\t"
        text = _field(char, form, piece, flags, prec)
        if width:
            text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width), "0" if "0" in flags else " ")
        return text

    def _field(char, form, piece, flags, prec):
        if char in "amcB":
            seconds = {"a": info.st_atime, "m": info.st_mtime, "c": info.st_ctime,
                       "B": getattr(info, "st_birthtime", info.st_ctime)}[char]
            if form == "S":
                return time.strftime(timefmt, time.localtime(seconds))
            return _number(int(seconds), form, flags)
        if char == "p":
            if form == "S":
                text = st.filemode(mode)
                return {"H": text[0], "M": "", "L": text[1:]}.get(piece, text)
            value = {"H": (mode >> 12) & 0o17, "M": (mode >> 9) & 0o7, "L": mode & 0o777}.get(piece, mode)
            return _number(value, form or "O", flags)
        if char == "u":
            return _user(info.st_uid) if form == "S" else _number(info.st_uid, form, flags)
        if char == "g":
            return _group(info.st_gid) if form == "S" else _number(info.st_gid, form, flags)
        if char == "T":
            kind = st.S_IFMT(mode)
            if piece == "H":
                return TYPE_LONG.get(kind, "")
            if kind == st.S_IFREG and mode & 0o111:
                return "*"
            return TYPE_CHAR.get(kind, "")
        if char == "Y":
            if not st.S_ISLNK(mode):
                return ""
            target = os.readlink(path)
            return " -> " + target if form == "S" else target
        if char == "N":
            return path
        if char == "z":
            return _number(info.st_size, form, flags)
        if char in "dr":
            device = info.st_dev if char == "d" else info.st_rdev
            if form == "S":
                return f"{os.major(device)},{os.minor(device)}" if device else "??"
            return _number({"H": os.major(device), "L": os.minor(device)}.get(piece, device), form, flags)
        if char == "Z":
            if st.S_ISCHR(mode) or st.S_ISBLK(mode):
                return f"{os.major(info.st_rdev)},{os.minor(info.st_rdev)}"
            return str(info.st_size)
        simple = {"i": info.st_ino, "l": info.st_nlink, "k": info.st_blksize, "b": info.st_blocks, "f": 0, "v": 0}
        if char in simple:
            if char == "f" and form == "S":
                return "-"
            return _number(simple[char], form, flags)
        raise FormatError(char)

    return SEQUENCE.sub(field, fmt)


def main(argv):
    try:
        opts, files = getopt.getopt(argv[1:], "FHLlnqrsxf:t:")
    except getopt.GetoptError as err:
        print(f"stat: illegal option -- {err.opt}", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 1
    fmt, timefmt, follow, newline, quiet = DEFAULT_FORMAT, DEFAULT_TIMEFMT, False, True, False
    for opt, value in opts:
        if opt == "-f":
            fmt = value
        elif opt == "-t":
            timefmt = value
        elif opt == "-L":
            follow = True
        elif opt == "-n":
            newline = False
        elif opt == "-q":
            quiet = True
        elif opt == "-r":
            fmt = RAW_FORMAT
        elif opt == "-s":
            fmt = SHELL_FORMAT
        elif opt in ("-l", "-F"):
            fmt = LS_FORMAT
        elif opt == "-x":
            fmt = ('  File: "%N"%n  Size: %-11z FileType: %HT%n  Mode: (%OMp%03OLp/%.10Sp)         Uid: (%5u/%8Su)'
                   '  Gid: (%5g/%8Sg)%nDevice: %Hd,%Ld   Inode: %i    Links: %l%nAccess: %Sa%nModify: %Sm%n'
                   'Change: %Sc%n Birth: %SB')
            timefmt = "%a %b %e %H:%M:%S %Y"
        elif opt == "-H":
            print("stat: -H needs NFS file handles, which this system does not have", file=sys.stderr)
            return 1
    status = 0
    targets = files or ["(stdin)"]
    for path in targets:
        try:
            info = os.fstat(0) if path == "(stdin)" and not files else (os.stat(path) if follow else os.lstat(path))
            output = render(fmt, path, info, timefmt)
        except FormatError as err:
            print(f"stat: {err.args[0]}: bad format", file=sys.stderr)
            return 1
        except OSError as err:
            if not quiet:
                print(f"stat: {path}: {os.strerror(err.errno)}", file=sys.stderr)
            status = 1
            continue
        sys.stdout.write(output + ("\n" if newline else ""))
    return status
