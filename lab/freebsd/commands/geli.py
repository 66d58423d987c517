"""geli(8): GEOM ELI providers. Metadata lives in the provider's last sector (lab/freebsd/geli_metadata.py);
an attached provider mdN.eli is a loop device over mdN minus that sector, so the data is stored in clear, but
every observable behaviour (keys, wrong passphrase, backups, status and list output, detach rules) is geli's.
"""

import getpass
import os
import sys

from lab.freebsd import cli, geli_metadata, geom, kld, mounts

COMMANDS = {
    # name: (getopt string, usage, loads geom_eli)
    "init": ("a:bB:de:gi:J:K:l:PRs:TvV:", "[-bdgPRTv] [-a aalgo] [-B backupfile] [-e ealgo] [-i iterations] "
             "[-l keylen] [-J newpassfile] [-K newkeyfile] [-s sectorsize] [-V version] prov ...", False),
    "label": ("a:bB:de:gi:J:K:l:PRs:TvV:", "- an alias for 'init'", False),
    "attach": ("Cdj:k:n:prv", "[-Cdprv] [-n keyno] [-j passfile] [-k keyfile] prov ...", True),
    "detach": ("fl", "[-fl] prov ...", False),
    "stop": ("fl", "- an alias for 'detach'", False),
    "onetime": ("a:de:l:Rs:Tv", "[-dRT] [-a aalgo] [-e ealgo] [-l keylen] [-s sectorsize] prov", True),
    "kill": ("av", "[-av] [prov ...]", False),
    "backup": ("v", "[-v] prov file", False),
    "restore": ("fv", "[-fv] file prov", False),
    "list": ("a", "[-a] [name ...]", False),
    "status": ("ags", "[-ags] [name ...]", False),
    "load": ("v", "[-v]", False),
    "unload": ("v", "[-v]", False),
}
STANDARD = {"list", "status", "load", "unload"}
BACKUP_DIR = "/var/backups/"


class GeliError(Exception):
    pass


def usage_text():
    lines = []
    for index, (name, (_opts, text, _load)) in enumerate(COMMANDS.items()):
        lines.append(("usage: geli " if index == 0 else "       geli ") + f"{name} {text}")
    return "\n".join(lines)


def main(argv):
    return cli.run(_main, argv)


def _main(argv):
    if len(argv) < 2:
        print(usage_text(), file=sys.stderr)
        return 1
    command = argv[1]
    if command not in COMMANDS:
        cli.warnx("geli", f"Unknown command: {command}.")
        print(usage_text(), file=sys.stderr)
        return 1
    optstring, text, autoload = COMMANDS[command]
    opts, args = cli.parse("geli", argv[2:], optstring, f"usage: geli {command} {text}")
    if command in ("list", "status") and not kld.is_loaded("g_eli"):
        cli.warnx("geli", f"Command '{command}' not available; try 'load' first.")
        return 1
    if autoload and not kld.is_loaded("g_eli"):
        kld.load("geom_eli")
    options = {}
    for opt, value in opts:
        options.setdefault(opt[1], []).append(value)
    handler = {"init": init, "label": init, "attach": attach, "detach": detach, "stop": detach,
               "onetime": onetime, "kill": kill, "backup": backup, "restore": restore, "list": list_geoms,
               "status": status, "load": load, "unload": unload}[command]
    try:
        return handler(options, args)
    except GeliError as error:
        cli.warnx("geli", str(error))
        return 1


def first(options, letter, default=None):
    return options[letter][-1] if letter in options else default


def number(options, letter, default):
    value = first(options, letter)
    if value is None:
        return default
    try:
        return int(value, 0)
    except ValueError:
        raise GeliError(f"Invalid value for '{letter}' argument.")


def read_passphrase(files, new):
    """The passphrase from -j/-J files ('-' is standard input, first line only), or a terminal prompt."""
    if files:
        text = ""
        for name in files:
            try:
                if name == "-":
                    line = sys.stdin.buffer.readline()
                else:
                    with open(name, "rb") as handle:
                        line = handle.readline()
            except OSError as error:
                raise GeliError(f"Cannot open passfile {name}: {error.strerror}.")
            text += line.decode(errors="surrogateescape").split("\n", 1)[0]
        return text
    try:
        tty = open("/dev/tty", "r+")
    except OSError:
        raise GeliError("Cannot read passphrase: Device not configured.")
    with tty:
        prompt = "Enter new passphrase: " if new else "Enter passphrase: "
        for _attempt in range(3):
            first_entry = getpass.getpass(prompt, stream=tty)
            if not new or getpass.getpass("Reenter new passphrase: ", stream=tty) == first_entry:
                return first_entry
            print("They didn't match.", file=sys.stderr)
    raise GeliError("Cannot read passphrase: Device not configured.")


def read_keyfiles(files):
    contents = []
    for name in files:
        try:
            if name == "-":
                contents.append(sys.stdin.buffer.read())
            else:
                with open(name, "rb") as handle:
                    contents.append(handle.read())
        except OSError as error:
            raise GeliError(f"Cannot open keyfile {name}: {error.strerror}.")
    return contents


def each_provider(args, action):
    """Run action(prov) for each provider as geli does: per-provider errors, then one summary error."""
    failed = False
    for prov in args:
        try:
            action(prov)
        except GeliError as error:
            cli.warnx("geli", str(error))
            failed = True
    if failed:
        raise GeliError("There was an error with at least one provider.")
    return 0


def lookup(prov):
    try:
        return geom.provider(prov)
    except geom.NoProvider:
        raise GeliError(f"Cannot get information about {prov}: No such file or directory.")


def init(options, args):
    if not args:
        raise GeliError("Too few arguments.")
    ealgo = geli_metadata.parse_ealgo(first(options, "e", "AES-XTS"))
    if ealgo is None:
        raise GeliError("Invalid encryption algorithm.")
    keylen = geli_metadata.keylen_for(ealgo, number(options, "l", 0))
    if keylen == 0 and ealgo != "NULL":
        raise GeliError("Invalid key length.")
    if "i" in options and "P" in options:
        raise GeliError("Options -i and -P are mutually exclusive.")
    if "P" in options and "J" in options:
        raise GeliError("Options -J and -P are mutually exclusive.")
    keyfiles = read_keyfiles(options.get("K", []))
    if "P" in options and not keyfiles:
        raise GeliError("No key components given.")
    passphrase = None if "P" in options else read_passphrase(options.get("J", []), new=True)
    flags = geom.FLAG["AUTORESIZE"]
    if "T" in options:
        flags |= geom.FLAG["NODELETE"]
    if "R" in options:
        flags &= ~geom.FLAG["AUTORESIZE"]
    if "b" in options:
        flags |= geom.FLAG["BOOT"]
    if "g" in options:
        flags |= geom.FLAG["GELIBOOT"]
    if "d" in options:
        flags |= geom.FLAG["GELIDISPLAYPASS"]
    requested_sector = number(options, "s", 0)
    iterations = number(options, "i", -1)

    def init_one(prov_name):
        prov = lookup(prov_name)
        sectorsize = requested_sector or prov["sectorsize"]
        if sectorsize % prov["sectorsize"] or sectorsize & (sectorsize - 1):
            raise GeliError("Invalid sector size.")
        md = geli_metadata.new(ealgo, keylen, prov["mediasize"], sectorsize, flags, passphrase, keyfiles,
                               iterations)
        short = geom.short_name(prov_name)
        if short in geom.eli_providers():
            raise GeliError(f"Cannot store metadata on {prov_name}: Operation not permitted.")
        try:
            geom.write_last_sector(prov, geli_metadata.encode(md))
        except OSError as error:
            raise GeliError(f"Cannot store metadata on {prov_name}: {error.strerror}.")
        if "v" in options:
            print(f"Metadata value stored on {prov_name}.")
        backfile = first(options, "B", "")
        if backfile == "":
            backfile = BACKUP_DIR + short.replace("/", "_") + ".eli"
        elif len(args) > 1 and backfile != "none":
            backfile = backfile.replace("PROV", short, 1) if "PROV" in backfile else f"{backfile}-{short}"
        if backfile != "none":
            write_backup(prov_name, prov, backfile)
            print(f"\nMetadata backup for provider {prov_name} can be found in {backfile}")
            print("and can be restored with the following command:")
            print(f"\n\t# geli restore {backfile} {prov_name}\n")

    return each_provider(args, init_one)


def write_backup(prov_name, prov, path):
    sector = geom.read_last_sector(prov)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600)
    except OSError as error:
        raise GeliError(f"Cannot open {path}: {error.strerror}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(sector)


def read_metadata(prov_name, prov):
    try:
        return geli_metadata.decode(geom.read_last_sector(prov))
    except geli_metadata.BadMetadata:
        raise GeliError(f"Cannot read metadata from {prov_name}: Invalid argument.")


def attach(options, args):
    if not args:
        raise GeliError("Too few arguments.")
    if "p" in options and "j" in options:
        raise GeliError("Options -j and -p are mutually exclusive.")
    keyfiles = read_keyfiles(options.get("k", []))
    if "p" in options and not keyfiles:
        raise GeliError("No key components given.")
    cached = {}

    def attach_one(prov_name):
        prov = lookup(prov_name)
        md = read_metadata(prov_name, prov)
        if md["provsize"] != prov["mediasize"]:
            raise GeliError("Provider size mismatch.")
        if "p" in options:
            passphrase = None
        else:
            if md["iterations"] == -1:
                raise GeliError("Missing -p flag.")
            if "value" not in cached:
                cached["value"] = read_passphrase(options.get("j", []), new=False)
            passphrase = cached["value"]
        short = geom.short_name(prov_name)
        if geli_metadata.matching_slot(md, passphrase, keyfiles) is None:
            raise GeliError(f"Wrong key for {short}.")
        if "C" in options:
            return
        if short in geom.eli_providers():
            raise GeliError(f"Cannot access {short} (error=1).")
        geom.eli_create(short, md, onetime=False, detach_on_close="d" in options, read_only="r" in options)
        if "v" in options:
            print(f"Attached to {prov_name}.")

    return each_provider(args, attach_one)


def consumer_of(prov_name):
    short = geom.short_name(prov_name)
    return short[:-4] if short.endswith(".eli") else short


def detach(options, args):
    if not args:
        raise GeliError("Too few arguments.")
    for prov_name in args:
        consumer = consumer_of(prov_name)
        if consumer not in geom.eli_providers():
            raise GeliError(f"No such device: {prov_name}.")
        if "l" in options:
            geom.eli_set_flag(consumer, geom.FLAG["RW-DETACH"])
            continue
        error = geom.eli_destroy(consumer, force="f" in options)
        if error:
            raise GeliError(f"Cannot destroy device {consumer}.eli (error={error}).")
    return 0


def onetime(options, args):
    if len(args) != 1:
        raise GeliError("Invalid number of arguments." if args else "Too few arguments.")
    ealgo = geli_metadata.parse_ealgo(first(options, "e", "aes"))
    if ealgo is None:
        raise GeliError("Invalid encryption algorithm.")
    keylen = geli_metadata.keylen_for(ealgo, number(options, "l", 0))
    if keylen == 0:
        raise GeliError("Invalid key length.")
    prov = lookup(args[0])
    sectorsize = number(options, "s", 0) or prov["sectorsize"]
    if sectorsize % prov["sectorsize"] or sectorsize & (sectorsize - 1):
        raise GeliError("Invalid sector size.")
    consumer = geom.short_name(args[0])
    if consumer in geom.eli_providers():
        raise GeliError(f"Cannot access {consumer} (error=1).")
    flags = geom.FLAG["AUTORESIZE"] | (geom.FLAG["NODELETE"] if "T" in options else 0)
    metadata = {"ealgo": ealgo, "keylen": keylen, "sectorsize": sectorsize, "flags": flags}
    geom.eli_create(consumer, metadata, onetime=True, detach_on_close="d" in options)
    return 0


def kill(options, args):
    if "a" in options:
        args = list(geom.eli_providers())
    elif not args:
        raise GeliError("No 'arg0' argument.")

    def kill_one(prov_name):
        consumer = consumer_of(prov_name)
        prov = lookup(consumer)
        attached = consumer in geom.eli_providers()
        if not attached:
            read_metadata(prov_name, prov)
        if prov["node"] is not None:
            geom.write_last_sector(prov, os.urandom(prov["sectorsize"]))
        if attached:
            geom.eli_destroy(consumer, force=True)

    return each_provider(args, kill_one)


def backup(options, args):
    if len(args) != 2:
        raise GeliError("Invalid number of arguments.")
    prov_name, path = args
    prov = lookup(prov_name)
    read_metadata(prov_name, prov)
    write_backup(prov_name, prov, path)
    return 0


def restore(options, args):
    if len(args) != 2:
        raise GeliError("Invalid number of arguments.")
    path, prov_name = args
    try:
        with open(path, "rb") as handle:
            sector = handle.read()
    except OSError as error:
        raise GeliError(f"Cannot open {path}: {error.strerror}.")
    try:
        md = geli_metadata.decode(sector)
    except geli_metadata.BadMetadata:
        raise GeliError("MD5 hash mismatch: not a geli backup file?")
    prov = lookup(prov_name)
    if md["provsize"] != prov["mediasize"] and "f" not in options:
        raise GeliError("Provider size mismatch: wrong backup file?")
    geom.write_last_sector(prov, sector)
    return 0


def load(options, args):
    if not kld.is_loaded("g_eli"):
        kld.load("geom_eli")
    return 0


def unload(options, args):
    try:
        kld.unload("geom_eli.ko")
    except kld.KldError as error:
        raise GeliError(f"cannot unload geom_eli: {error}")
    return 0


def _in_use(consumer, eli):
    """Whether the provider is open for writing: mounted read-write or used for swap."""
    name = "/dev/" + consumer + ".eli"
    mounted = [entry for entry in mounts.table() if entry["device"] == name]
    if mounted:
        return "r1w0e0" if all(entry["read_only"] for entry in mounted) else "r1w1e1"
    return "r1w1e0" if geom.swap_uses(consumer + ".eli") else "r0w0e0"


def flag_text(flags):
    names = [name for name, bit in geom.ELI_FLAG_NAMES if flags & bit]
    return ", ".join(names) if names else "NONE"


def _selected(args):
    providers = geom.eli_providers()
    if not args:
        return sorted(providers.items())
    selected = []
    for name in args:
        consumer = consumer_of(name)
        if consumer not in providers:
            raise GeliError(f"Class 'ELI' does not have an instance named '{geom.short_name(name)}'.")
        selected.append((consumer, providers[consumer]))
    return selected


def list_geoms(options, args):
    for consumer, eli in _selected(args):
        mode = _in_use(consumer, eli)
        flags = eli["flags"] | (geom.FLAG["W-OPEN"] if mode[3] == "1" else 0)
        keys = max(1, -(-eli["mediasize"] // (eli["sectorsize"] << 20)))
        lines = [f"Geom name: {consumer}.eli", "State: ACTIVE", f"EncryptionAlgorithm: {eli['ealgo']}",
                 f"KeyLength: {eli['keylen']}", "Crypto: accelerated software", f"Version: {eli['version']}"]
        if not eli["flags"] & geom.FLAG["ONETIME"]:
            lines.append("UsedKey: 0")
        lines += [f"Flags: {flag_text(flags)}", f"KeysAllocated: {keys}", f"KeysTotal: {keys}",
                  "Providers:", f"1. Name: {consumer}.eli",
                  f"   Mediasize: {eli['mediasize']} ({cli.humanize(eli['mediasize'], 5)})",
                  f"   Sectorsize: {eli['sectorsize']}", f"   Mode: {mode}",
                  "Consumers:", f"1. Name: {consumer}",
                  f"   Mediasize: {eli['consumer_size']} ({cli.humanize(eli['consumer_size'], 5)})",
                  f"   Sectorsize: {eli['consumer_sectorsize']}", "   Mode: r1w1e1", ""]
        print("\n".join(lines))
    return 0


def status(options, args):
    rows = [(f"{consumer}.eli", "ACTIVE", consumer) for consumer, _eli in _selected(args)]
    if not rows:
        return 0
    if "s" in options:
        for name, state, component in rows:
            print(f"{name}  {state}  {component}")
        return 0
    width = max(len("Name"), *(len(row[0]) for row in rows))
    state_width = max(len("Status"), *(len(row[1]) for row in rows))
    print(f"{'Name':>{width}}  {'Status':>{state_width}}  Components")
    for name, state, component in rows:
        print(f"{name:>{width}}  {state:>{state_width}}  {component}")
    return 0
