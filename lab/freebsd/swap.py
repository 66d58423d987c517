"""swapon(8), swapoff(8), swapctl(8) and swapinfo(8) of a lab host (one program under four names, as on FreeBSD).

Swap is kernel state only ("swap": {"devices": [{"device", "size"}]}): the machine's real swap is never
touched. The program follows FreeBSD 14's sbin/swapon/swapon.c, its dispatch included: an fstab entry whose
name starts with `md` followed by a digit (or `/dev/md` and a digit) is a swap file: swapon attaches the
`file=` of its options as an md(4) vnode unit itself and swaps on the plain /dev/mdN, never through GELI, and
the unit must be the whole rest of the name (`md99.eli` and `/dev/md99` are refused: "Bad device unit").
Another name ending in `.eli` gets a one-time GELI key first (`geli onetime` with the aalgo/ealgo/keylen/
sectorsize/notrim options of its fstab line, or geli's defaults when named on the command line); swapoff
closes it, and GELI detaches it. Messages, the silence of -a about devices already on (or off) and the exit
statuses are swapon.c's.
"""

import fnmatch
import os
import subprocess
import sys

from lab.freebsd import cli, geom, kernel
from lab.freebsd.fstab import entries as fstab_entries

USAGES = {
    "swapon": "usage: swapon [-F fstab] -aLq | [-E] file ...",
    "swapoff": "usage: swapoff [-F fstab] -afLq | file ...",
    "swapctl": "usage: swapctl [-AghklmsU] [-a file ... | -d file ...]",
}
GELI_OPTIONS = ("aalgo", "ealgo", "keylen")
GELI_KNOWN = {"late", "noauto", "sw", "trimonce"}
PAGE_SIZE = 4096
INT_MAX = 2**31 - 1
ULONG_MAX = 2**64 - 1
EINVAL, ENOENT = "Invalid argument", "No such file or directory"


class SwapError(Exception):
    """A failure swapon.c reports (already printed, or silent) and counts in the exit status."""


def devices():
    return kernel.read("swap", {}).get("devices", [])


def _run(command):
    """run_cmd() of swapon.c: the command's standard output, or None when it exits non-zero."""
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def _strtoul(text):
    """(value, errno text) of strtoul(3) with swapon.c's checks: the whole text, at most INT_MAX."""
    digits = text.lstrip(" \t\n\v\f\r")
    if digits[:1] == "+":
        digits = digits[1:]
    end = len(digits) - len(digits.lstrip("0123456789"))
    if end == 0:
        return None, EINVAL
    value = int(digits[:end])
    if value > ULONG_MAX:
        return None, "Result too large"
    if end != len(digits) or value > INT_MAX:
        return None, EINVAL
    return value, None


def _exists(name):
    """stat(2) of a name: a devfs node is there while its GEOM provider is (state-only ones included)."""
    path = os.path.abspath(name)
    if path.startswith("/dev/"):
        try:
            geom.provider(path)
            return True
        except geom.NoProvider:
            pass
    return os.path.exists(path)


class Swap:
    """One run of the program: which of swapon/swapoff it acts as, and its -q flag."""

    def __init__(self, prog, action, quiet):
        self.prog, self.action, self.quiet = prog, action, quiet

    def warn(self, message):
        cli.warnx(self.prog, message)

    def swap_on_off(self, name, doingall, mntops):
        md_name = (fnmatch.fnmatchcase(name, "/dev/md[0-9]*") or fnmatch.fnmatchcase(name, "md[0-9]*")
                   or name in ("/dev/md", "md"))
        if mntops is not None and md_name:
            return self.md(name, mntops, doingall)
        if os.path.basename(name).endswith(".eli"):
            return self.geli(name, mntops, doingall)
        return self.sfile(name, doingall)

    def geli_args(self, mntops):
        """swap_on_geli_args(): geli onetime flags from the fstab options (sector size: the page size)."""
        values, notrim = {}, False
        for token in (mntops.split(",") if mntops is not None else []):
            key, sep, value = token.partition("=")
            if sep and key in GELI_OPTIONS + ("sectorsize",):
                if key in ("keylen", "sectorsize") and _strtoul(value)[0] is None:
                    self.warn(f"Invalid {key}: {value}: {_strtoul(value)[1]}")
                    raise SwapError(token)
                values[key] = value
            elif token == "notrim":
                notrim = True
            elif token not in GELI_KNOWN:
                self.warn(f"Invalid option: {token}")
                raise SwapError(token)
        args = []
        for key, flag in zip(GELI_OPTIONS, ("-a", "-e", "-l")):
            if key in values:
                args += [flag, values[key]]
        if notrim:
            args.append("-T")
        return args + ["-s", values.get("sectorsize", str(PAGE_SIZE)), "-d"]

    def geli(self, name, mntops, doingall):
        if self.action == "on" and not _exists(name):
            args = self.geli_args(mntops)
            if _run(["/sbin/geli", "onetime", *args, name[: name.rindex(".")]]) is None:
                if not self.quiet:
                    self.warn(f"{name}: Invalid parameters")
                raise SwapError(name)
        return self.sfile(name, doingall)

    def md(self, name, mntops, doingall):
        """swap_on_off_md(): a vnode md unit from file=, swapped on (or off and detached) as plain /dev/mdN."""
        unit = -1
        if len(name) != 2:
            unit, error = _strtoul(name[2:])
            if unit is None:
                self.warn(f"Bad device unit: {name}: {error}")
                raise SwapError(name)
        found = mntops.find("file=")
        if found < 0:
            self.warn(f"file option not found for {name}")
            raise SwapError(name)
        vnodefile = mntops[found + 5:].split(",", 1)[0]
        listed = _run(["/sbin/mdconfig", "-l", "-n", "-f", vnodefile]
                      + ([] if unit == -1 else ["-u", str(unit)]))
        if self.action == "on":
            if listed is not None:
                if not self.quiet:
                    self.warn(f"{vnodefile}: Device already in use" if unit == -1
                              else f"md{unit} on {vnodefile}: Device already in use")
                raise SwapError(name)
            if unit == -1:
                made = _run(["/sbin/mdconfig", "-a", "-t", "vnode", "-n", "-f", vnodefile])
                if made is None:
                    self.warn(f"mdconfig (attach) error: file={vnodefile}")
                    raise SwapError(name)
                unit = int(made.split()[0])
            elif _run(["/sbin/mdconfig", "-a", "-t", "vnode", "-u", str(unit), "-f", vnodefile]) is None:
                self.warn(f"mdconfig (attach) error: md{unit} on file={vnodefile}")
                raise SwapError(name)
        else:
            if listed is None:
                if not self.quiet:
                    self.warn(f"md on {vnodefile}: Device not found" if unit == -1
                              else f"md{unit} on {vnodefile}: Device not found")
                raise SwapError(name)
            if unit == -1:
                unit = int(listed.split()[0])
        path = self.sfile(f"/dev/md{unit}", doingall)
        if self.action == "off" and _run(["/sbin/mdconfig", "-d", "-u", str(unit)]) is None:
            self.warn(f"mdconfig (detach) detach failed: /dev/md{unit}: Device busy")
        return path

    def sfile(self, name, doingall):
        """swap_on_off_sfile(): the swapon(2)/swapoff(2) system calls and their errors."""
        path = os.path.abspath(name)
        active = any(entry["device"] == path for entry in devices())
        try:
            prov = geom.provider(path) if path.startswith("/dev/") else None
        except geom.NoProvider:
            prov = None
        if prov is None:
            # swapon(2) takes a disk device; a regular file (on UFS) is EINVAL, nothing at all ENOENT
            error = EINVAL if os.path.isfile(path) else ENOENT
        elif self.action == "on":
            error = "busy" if active else None
        else:
            error = None if active else EINVAL
        if error == "busy":
            if not doingall:
                self.warn(f"{name}: Device already in use")
            raise SwapError(name)
        if error == EINVAL:
            if self.action == "on":
                self.warn(f"{name}: NSWAPDEV limit reached")
            elif not doingall:
                self.warn(f"{name}: {EINVAL}")
            raise SwapError(name)
        if error is not None:
            self.warn(f"{name}: {error}")
            raise SwapError(name)
        with kernel.update("swap", {}) as state:
            listed = state.setdefault("devices", [])
            if self.action == "on":
                listed.append({"device": path, "size": prov["mediasize"]})
            else:
                state["devices"] = [entry for entry in listed if entry["device"] != path]
        if self.action == "off":
            geom.last_write_close(geom.short_name(path))
        return name


def main(prog, argv):
    try:
        return _main(prog, argv)
    except cli.UsageError as error:
        return error.status


def _usage(prog):
    print(USAGES[prog], file=sys.stderr)
    raise cli.UsageError(1)


def _main(prog, argv):
    opts, args = cli.parse(prog, argv[1:], "AadEfghklLmqsUF:", USAGES[prog])
    action = {"swapon": "on", "swapoff": "off", "swapctl": None}[prog]
    doall = late = quiet = False
    fstab, flags = "/etc/fstab", set()
    for opt, value in opts:
        flags.add(opt)
        if opt == "-A" or opt == "-U":
            if prog != "swapctl":
                _usage(prog)
            doall, action = True, "on" if opt == "-A" else "off"
        elif opt == "-a":
            if prog == "swapctl":
                action = "on"
            else:
                doall = True
        elif opt == "-d":
            if action is not None or prog != "swapctl":
                _usage(prog)
            action = "off"
        elif opt == "-E" and action != "on" or opt == "-f" and action != "off":
            _usage(prog)
        elif opt == "-L":
            late = True
        elif opt == "-q":
            quiet = action is not None
        elif opt == "-F":
            fstab = value
    if action is None:
        if "-l" in flags or "-s" in flags:
            return listing("-l" in flags, "-s" in flags, flags)
        _usage(prog)
    if not doall and not args:
        _usage(prog)
    program = Swap(prog, action, quiet)
    status = 0
    if doall:
        for entry in fstab_entries(fstab):
            if entry["kind"] != "sw":
                continue
            mntops = ",".join(entry["options"])
            if "noauto" in mntops:
                continue
            if action == "on" and "late" in mntops and not late:
                continue
            if action == "off" and "late" not in mntops and late:
                continue
            try:
                done = program.swap_on_off(entry["spec"], True, mntops)
            except SwapError:
                status = 1
                continue
            if not quiet:
                print(f"{prog}: {'add' if action == 'on' else 'remov'}ing {done} as swap device")
    for name in args:
        try:
            done = program.swap_on_off(name, False, None)
        except SwapError:
            status = 1
            continue
        if prog == "swapctl":
            print(f"{prog}: {'add' if action == 'on' else 'remov'}ing {done} as swap device")
    return status


def listing(per_device, summary, flags):
    """swapctl -l / -s."""
    unit, header = 1024, "1024-blocks"
    if "-m" in flags:
        unit, header = 2**20, "1MB-blocks"
    elif "-g" in flags:
        unit, header = 2**30, "1GB-blocks"
    width = 9  # the header width getbsize(3) gives for BLOCKSIZE=1K
    if per_device:
        print("%-13s %*s %*s" % ("Device:", width, header, width, "Used:"))
    total = 0
    for entry in devices():
        total += entry["size"]
        if per_device:
            print("/dev/%-8s %*d %*d" % (geom.short_name(entry["device"]), width, entry["size"] // unit, width, 0))
    if summary:
        print("Total:        %*d %*d" % (width, total // unit, width, 0))
    return 0


def swapinfo(argv):
    """swapinfo(8) (pstat -s): one line per device and a Total line when there are several."""
    try:
        opts, args = cli.parse("swapinfo", argv[1:], "ghkmM:N:", "usage: swapinfo [-ghkm] [-M core [-N system]]")
    except cli.UsageError as error:
        return error.status
    flags = {opt for opt, _value in opts}
    unit, header = 1024, "1K-blocks"
    if "-m" in flags:
        unit, header = 2**20, "1M-blocks"
    elif "-g" in flags:
        unit, header = 2**30, "1G-blocks"
    width = len(header)
    print("%-15s %*s %8s %8s %8s" % ("Device", width, header, "Used", "Avail", "Capacity"))
    entries = devices()
    total = 0
    for entry in entries:
        size = entry["size"] // unit
        total += size
        print("%-15s %*d %8d %8d %5.0f%%" % (entry["device"], width, size, 0, size, 0))
    if len(entries) > 1:
        print("%-15s %*d %8d %8d %5.0f%%" % ("Total", width, total, 0, total, 0))
    return 0
