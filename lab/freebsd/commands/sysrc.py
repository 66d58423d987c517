"""sysrc(8): read and change rc.conf(5) variables. Values are read as rc(8) reads them, by /bin/sh sourcing
/etc/defaults/rc.conf and then the rc_conf_files (or the -f files); a change rewrites the assignment in the
last file that sets the variable (or appends it to the first file), as NAME="VALUE".
With -j JAIL (or -R DIR) every file is taken under the jail's root; a running jail's root comes from the
jail list of the kernel state (lab/freebsd/jails.py)."""

import os
import re
import subprocess
import sys

from lab.freebsd import cli

USAGE = """Usage: sysrc [OPTIONS] {name[[+|-]=value] ... | -a | -A | -l | -L [name ...]}
Try `sysrc --help' for more information."""
DEFAULTS = "/etc/defaults/rc.conf"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
READ_SCRIPT = """
root=$1; shift
defaults=$1; shift
files=$1; shift
[ -n "$defaults" ] && [ -r "$root$defaults" ] && . "$root$defaults"
if [ -z "$files" ]; then files=${rc_conf_files:-/etc/rc.conf /etc/rc.conf.local}; fi
for _f in $files; do [ -r "$root$_f" ] && . "$root$_f"; done
for _n in "$@"; do
    if eval "[ \\"\\${$_n+set}\\" ]"; then eval "printf 'S%s\\\\0' \\"\\$$_n\\""; else printf 'U\\0'; fi
done
"""


class Context:
    def __init__(self, root, files):
        self.root = root
        self.files = files  # None: the rc_conf_files of the defaults

    def conf_files(self):
        if self.files is not None:
            return self.files
        listed = self.read(["rc_conf_files"], defaults_only=True)["rc_conf_files"]
        return (listed or "/etc/rc.conf /etc/rc.conf.local").split()

    def read(self, names, defaults_only=False, files=None):
        """{name: value or None (unset)} as sh sees them after sourcing the configuration."""
        if files is None:
            files = "/nonexistent" if defaults_only else " ".join(self.files) if self.files is not None else ""
        result = subprocess.run(["/bin/sh", "-c", READ_SCRIPT, "sh", self.root, DEFAULTS, files, *names],
                                capture_output=True, env={"PATH": "/sbin:/bin:/usr/sbin:/usr/bin"})
        values = result.stdout.decode(errors="surrogateescape").split("\0")
        return {name: (value[1:] if value.startswith("S") else None) for name, value in zip(names, values)}

    def path(self, name):
        return self.root + name

    def setting_file(self, name):
        """The last configuration file that assigns `name`, or None."""
        found = None
        pattern = re.compile(rf"^\s*{re.escape(name)}=")
        for conf in self.conf_files():
            try:
                with open(self.path(conf)) as handle:
                    if any(pattern.match(line) for line in handle):
                        found = conf
            except OSError:
                continue
        return found


def quote(value):
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`") + '"'


def write_assignment(path, name, value):
    """Replace the last assignment of `name` in `path` (or append one)."""
    try:
        with open(path) as handle:
            lines = handle.readlines()
    except FileNotFoundError:
        lines = []
    pattern = re.compile(rf"^\s*{re.escape(name)}=")
    indexes = [index for index, line in enumerate(lines) if pattern.match(line)]
    new_line = f"{name}={quote(value)}\n"
    if indexes:
        lines[indexes[-1]] = new_line
    else:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(new_line)
    tmp = path + ".sysrc"
    with open(tmp, "w") as handle:
        handle.writelines(lines)
    if os.path.exists(path):
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
    os.replace(tmp, path)


def delete_assignments(path, name):
    try:
        with open(path) as handle:
            lines = handle.readlines()
    except OSError:
        return False
    pattern = re.compile(rf"^\s*{re.escape(name)}=")
    kept = [line for line in lines if not pattern.match(line)]
    if len(kept) == len(lines):
        return False
    with open(path, "w") as handle:
        handle.writelines(kept)
    return True


def parse_options(args):
    """sysrc is a sh script: options come from getopts, whose error reads `Illegal option -X`."""
    options = {"files": None}
    flags = set()
    pairs, operands = cli.getopts(args, "aAcdDeFf:hij:nNlLqR:vxX", USAGE)
    for option, value in pairs:
        letter = option[1]
        if letter == "f":
            options["files"] = (options["files"] or []) + value.split()
        elif letter in "jR":
            options[letter] = value
        else:
            flags.add(letter)
    options["flags"] = flags
    options["operands"] = operands
    return options


def jail_root(name):
    from lab.freebsd import jails

    jail = jails.find(name)
    if jail is None:
        print(f'jls: jail "{name}" not found', file=sys.stderr)
        return None
    return jail["path"].rstrip("/")


def main(argv):
    return cli.run(_main, argv)


def _main(argv):
    options = parse_options(argv[1:])
    flags = options["flags"]
    root = ""
    if "j" in options:
        root = jail_root(options["j"])
        if root is None:
            return 1
    elif "R" in options:
        root = options["R"].rstrip("/")
    context = Context(root, options["files"])
    operands = options["operands"]
    if "h" in flags or (not operands and not flags & {"a", "A"}):
        print(USAGE, file=sys.stderr)
        return 1
    if flags & {"a", "A"}:
        return show_all(context, flags)
    status = 0
    for operand in operands:
        status |= handle(context, operand, flags)
    return status


def show_all(context, flags):
    names = set()
    files = context.conf_files() + ([DEFAULTS] if "A" in flags else [])
    for conf in files:
        try:
            with open(context.path(conf)) as handle:
                for line in handle:
                    match = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=", line)
                    if match:
                        names.add(match.group(1))
        except OSError:
            continue
    names.discard("rc_conf_files")
    values = context.read(sorted(names))
    for name in sorted(names):
        if values[name] is not None:
            show(name, values[name], flags)
    return 0


def show(name, value, flags):
    if "n" in flags:
        print(value)
    elif "N" in flags:
        print(name)
    elif "e" in flags:
        print(f"{name}={quote(value)}")
    else:
        print(f"{name}: {value}")


def unknown(name, flags):
    if "i" not in flags:
        print(f"sysrc: unknown variable '{name}'", file=sys.stderr)
        return 1
    return 0


def handle(context, operand, flags):
    match = re.match(r"^([^=+-]*)([+-]?=)(.*)$", operand, re.S)
    name = match.group(1) if match else operand
    if not NAME_RE.match(name):
        print(f"sysrc: {name}: name contains characters not allowed in shell", file=sys.stderr)
        return 1
    old = context.read([name])[name]
    if "x" in flags:
        if match:
            print(f"sysrc: {operand}: -x does not take a value", file=sys.stderr)
            return 1
        deleted = False
        for conf in context.conf_files():
            deleted |= delete_assignments(context.path(conf), name)
        return 0 if deleted else unknown(name, flags)
    if not match:
        if old is None:
            return unknown(name, flags)
        show(name, old, flags)
        return 0
    operator, value = match.group(2), match.group(3)
    current = old or ""
    if operator == "+=":
        words = current.split()
        new = current if value in words else (f"{current} {value}" if current else value)
    elif operator == "-=":
        new = " ".join(word for word in current.split() if word != value)
    else:
        new = value
    if "c" in flags:
        return 0 if current == new else 1
    target = context.setting_file(name) or context.conf_files()[0]
    try:
        write_assignment(context.path(target), name, new)
    except OSError as error:
        print(f"sysrc: {context.path(target)}: {error.strerror}", file=sys.stderr)
        return 1
    if "q" in flags:
        return 0
    prefix = f"{target}: " if "v" in flags else ""
    if "n" in flags:
        print(f"{prefix}{current} -> {new}")
    else:
        print(f"{prefix}{name}: {current} -> {new}")
    return 0
