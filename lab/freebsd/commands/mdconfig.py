"""mdconfig(8): attach, detach and list md(4) memory disks. A vnode unit is a Linux loop device over the
image file; malloc and swap units are loop devices over a sparse file in the kernel state (gone at reboot)."""

import os
import sys

from lab.freebsd import cli, geom, kernel, loopdev

USAGE = """usage: mdconfig -a -t type [-n] [-o [no]option] ... [-f file]
                [-s size] [-S sectorsize] [-u unit] [-L label]
                [-x sectors/track] [-y heads/cylinder]
       mdconfig -d -u unit [-o [no]force]
       mdconfig -r -u unit -s size [-o [no]force]
       mdconfig -l [-v] [-n] [-f file] [-u unit]
       mdconfig file
                type = {malloc, vnode, swap}
                option = {async, cache, compress, force, mustdealloc, readonly, ro, reserve, verify}
                size = %d (512 byte blocks), %db (B),
                       %dk (kB), %dm (MB), %dg (GB),
                       %dt (TB), or %dp (PB)"""
OPTIONS = {"async", "cache", "cluster", "compress", "force", "mustdealloc", "readonly", "ro", "reserve", "verify"}
SUFFIXES = {"b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}


def usage():
    print(USAGE, file=sys.stderr)
    raise cli.UsageError(1)


def parse_size(text):
    digits = text.rstrip("bBkKmMgGtTpP")
    if not digits.isdigit():
        raise ValueError(text)
    suffix = text[len(digits):].lower()
    if len(suffix) > 1:
        raise ValueError(text)
    return int(digits) * (SUFFIXES[suffix] if suffix else 512)


def parse_unit(text):
    text = text.removeprefix("/dev/").removeprefix("md")
    if not text.isdigit():
        cli.warnx("mdconfig", f"bad unit: {text}")
        raise cli.UsageError(1)
    return int(text)


def main(argv):
    return cli.run(_main, argv)


def _main(argv):
    opts, args = cli.parse("mdconfig", argv[1:], "ab:df:lL:nro:s:S:t:u:vx:y:", USAGE)
    action = None
    mdtype = file = size = unit = None
    verbose = nflag = readonly = force = False
    for opt, value in opts:
        if opt in ("-a", "-d", "-l", "-r"):
            if action is not None:
                usage()
            action = opt[1]
        elif opt == "-t":
            if value not in ("malloc", "vnode", "swap"):
                usage()
            mdtype = value
        elif opt == "-f":
            file = value
        elif opt == "-s":
            try:
                size = parse_size(value)
            except ValueError:
                cli.warnx("mdconfig", "Unknown suffix on -s argument")
                return 1
        elif opt == "-u":
            unit = parse_unit(value)
        elif opt == "-v":
            verbose = True
        elif opt == "-n":
            nflag = True
        elif opt == "-o":
            name = value.removeprefix("no")
            if name not in OPTIONS:
                cli.warnx("mdconfig", f"Unknown option: {value}.")
                return 1
            if name in ("readonly", "ro"):
                readonly = not value.startswith("no")
            if name == "force":
                force = not value.startswith("no")
    if action is None:
        if file or size:
            action = "a"
        elif len(args) == 1:
            action, file, args = "a", args[0], []
        else:
            usage()
    if args:
        usage()
    if action == "a":
        return attach(mdtype or ("vnode" if file else "swap" if size else None), file, size, unit, nflag, readonly)
    if action == "d":
        if unit is None:
            usage()
        return detach(unit, force)
    if action == "l":
        return list_units(unit, file, verbose, nflag)
    usage()


def attach(mdtype, file, size, unit, nflag, readonly):
    if mdtype is None:
        usage()
    if mdtype == "vnode":
        if not file:
            cli.warnx("mdconfig", "must specify -f for -t vnode")
            return 1
        path = os.path.realpath(file)
        if not os.path.exists(path):
            print(f"mdconfig: could not find full path for {file}: No such file or directory", file=sys.stderr)
            return 1
        if not os.path.isfile(path):
            cli.warnx("mdconfig", f"{file} is not a regular file")
            return 1
        size = size or os.path.getsize(path)
        if not readonly and not os.access(path, os.W_OK):
            print(f"WARNING: opening backing store: {path} readonly", file=sys.stderr)
            readonly = True
    else:
        if not size:
            cli.warnx("mdconfig", "must specify -s for -t malloc or -t swap")
            return 1
        path = None
    size -= size % geom.MD_SECTOR
    if size == 0:
        print("mdconfig: ioctl(/dev/mdctl): Invalid argument", file=sys.stderr)
        return 1
    with kernel.update("md", {}) as state:
        units = state.setdefault("units", {})
        if unit is None:
            unit = next(number for number in range(len(units) + 1) if str(number) not in units)
        elif str(unit) in units:
            print("mdconfig: ioctl(/dev/mdctl): File exists", file=sys.stderr)
            return 1
        if path is None:
            os.makedirs(os.path.join(kernel.KERNEL_DIR, "md"), exist_ok=True)
            backing = os.path.join(kernel.KERNEL_DIR, "md", f"md{unit}")
            with open(backing, "wb") as handle:
                handle.truncate(size)
        else:
            backing = path
        loop = loopdev.attach(backing, sizelimit=size, read_only=readonly)
        units[str(unit)] = {"type": mdtype, "file": path, "size": size, "loop": loop, "readonly": readonly}
    loopdev.make_device_node(os.path.join(geom.DEV, f"md{unit}"), loop)
    if nflag:
        print(unit)
    else:
        print(f"md{unit}")
    return 0


def detach(unit, force):
    units = geom.md_units()
    info = units.get(unit)
    if info is None:
        print("mdconfig: ioctl(/dev/mdctl): No such file or directory", file=sys.stderr)
        return 1
    busy = f"md{unit}" in geom.eli_providers() or geom.swap_uses(f"md{unit}") or loopdev.in_use(info["loop"])
    if busy and not force:
        print("mdconfig: ioctl(/dev/mdctl): Device busy", file=sys.stderr)
        return 1
    loopdev.detach(info["loop"])
    with kernel.update("md", {}) as state:
        state.get("units", {}).pop(str(unit), None)
    loopdev.remove_device_node(os.path.join(geom.DEV, f"md{unit}"))
    if info["type"] != "vnode":
        os.unlink(os.path.join(kernel.KERNEL_DIR, "md", f"md{unit}"))
    return 0


def describe(unit, info):
    fields = [f"md{unit}", info["type"], "%6s" % cli.humanize(info["size"], 6)]
    fields.append(info["file"] if info["type"] == "vnode" else "-")
    fields.append("")  # label
    return "\t".join(fields)


def list_units(unit, file, verbose, nflag):
    units = sorted(geom.md_units().items())
    if file is not None:
        wanted = os.path.realpath(file)
        units = [(number, info) for number, info in units if info["file"] == wanted]
    if unit is not None:
        units = [(number, info) for number, info in units if number == unit]
        for number, info in units:
            print(describe(number, info))
        return 0 if units else 1
    if verbose:
        for number, info in units:
            print(describe(number, info))
    else:
        print("".join(f"{number if nflag else f'md{number}'} " for number, _info in units))
    return 0 if units or file is None else 1
