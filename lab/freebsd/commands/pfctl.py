"""pfctl(8): check, load and show pf rules, tables and status, kept as a parsed ruleset in kernel state.

The ruleset is parsed by the lab's own pf.conf reader (lab.freebsd.pfconf) and stored, expanded, under the
`pf` subsystem of kernel state. Every change to that state is enforced at once: lab.freebsd.pfnft translates
it into the lab host's nftables rules (-d removes them), so a loaded ruleset really filters and translates.
Messages, their stream (pfctl talks on stderr) and exit statuses follow pfctl.c.
"""

import contextlib
import ipaddress
import re
import sys
import time

from lab.freebsd import cli, kernel, kld, pfconf, pfnft

OPTSTRING = "a:AdD:eqf:F:ghi:k:K:mMnNOo:Pp:rRs:St:T:vx:z"
USAGE = """usage: pfctl [-AdeghMmNnOPqRrvz] [-a anchor] [-D macro=value] [-F modifier]
	[-f file] [-i interface] [-K host | network]
	[-k host | network | gateway | label | id] [-o level] [-p device]
	[-s modifier] [-t table -T command [address ...]] [-x level]
"""
SHOW_MODIFIERS = ["ether", "nat", "queue", "rules", "Anchors", "Sources", "states", "info", "Interfaces",
                  "labels", "timeouts", "memory", "Tables", "osfp", "Running", "all", "creatorids"]
FLUSH_MODIFIERS = ["nat", "queue", "ethernet", "rules", "Sources", "states", "info", "Tables", "osfp", "Reset",
                   "all"]
TABLE_COMMANDS = ["kill", "flush", "add", "delete", "replace", "show", "test", "zero", "expire"]
STATE_COUNTERS = ["searches", "inserts", "removals"]
COUNTERS = ["match", "bad-offset", "fragment", "short", "normalize", "memory", "bad-timestamp", "congestion",
            "ip-option", "proto-cksum", "state-mismatch", "state-insert", "state-limit", "src-limit",
            "synproxy", "map-failed"]
EMPTY_STATE = {"enabled": False, "since": 0, "ruleset": {"options": {}, "nat": [], "rules": []}, "tables": {},
               "file": None}


class PfctlError(Exception):
    pass


def _lookup(word, choices, what):
    found = [choice for choice in choices if choice.startswith(word)] if word else []
    if len(found) > 1:
        raise PfctlError(f"{word} is ambigious")
    if not found:
        sys.stderr.write(f"pfctl: Unknown {what} modifier '{word}'\n")
        sys.stderr.write(USAGE)
        raise SystemExit(1)
    return found[0]


def main(argv):
    try:
        options, operands = cli.parse("pfctl", argv[1:], OPTSTRING, USAGE.rstrip("\n"))
    except cli.UsageError as error:
        return error.status
    options = [(letter[1], value or None) for letter, value in options]
    flags = {letter for letter, value in options if value is None}
    values = {letter: value for letter, value in options if value is not None}
    defines = dict(v.split("=", 1) for letter, v in options if letter == "D" and "=" in v)
    quiet = "q" in flags
    if not kld.is_loaded("pf") and ({"d", "e"} & flags or {"s", "F", "T"} & set(values) or
                                    "f" in values and "n" not in flags):
        # pf.ko provides /dev/pf; without it pfctl can only check a file (-n).
        sys.stderr.write("pfctl: /dev/pf: No such file or directory\n")
        return 1
    try:
        show = _lookup(values["s"], SHOW_MODIFIERS, "show") if "s" in values else None
        flush = _lookup(values["F"], FLUSH_MODIFIERS, "flush") if "F" in values else None
        if operands and "T" not in values:
            sys.stderr.write(USAGE)
            return 1
        if "T" in values and "t" not in values or "t" in values and "T" not in values:
            sys.stderr.write(USAGE)
            return 1
        status = 0
        if "d" in flags:
            status |= _disable(quiet)
        if "T" in values:
            status |= _table_command(values["t"], values["T"], operands, quiet, "n" in flags, "v" in flags)
        if show:
            _show(show, "v" in flags)
        if flush:
            _flush(flush, quiet)
        if "f" in values:
            status |= _load(values["f"], "n" in flags, "v" in flags, defines)
        if "e" in flags:
            status |= _enable(quiet)
        return 1 if status else 0
    except PfctlError as error:
        sys.stderr.write(f"pfctl: {error}\n")
        return 1


@contextlib.contextmanager
def _pf_state(enforce=True):
    """Lock and update pf kernel state, then make the packet filter follow it; when nft refuses the result,
    the state is left as it was (the kernel's transaction failed)."""
    with kernel.update("pf", EMPTY_STATE) as state:
        pfnft.sync_tables(state)
        yield state
        if enforce:
            try:
                pfnft.apply(state)
            except pfnft.EnforcementError as error:
                raise PfctlError(f"DIOCXCOMMIT: {error}") from None


# ------------------------------------------------------------------------------------------ enable

def _enable(quiet):
    with _pf_state() as state:
        if state["enabled"]:
            raise PfctlError("pf already enabled")
        state["enabled"], state["since"] = True, int(time.time())
    if not quiet:
        sys.stderr.write("pf enabled\n")
    return 0


def _disable(quiet):
    with _pf_state() as state:
        if not state["enabled"]:
            raise PfctlError("pf not enabled")
        state["enabled"], state["since"] = False, int(time.time())
    if not quiet:
        sys.stderr.write("pf disabled\n")
    return 0


# ------------------------------------------------------------------------------------------ load

def _read_rules_file(path):
    if path == "-":
        return sys.stdin.read(), "stdin"
    try:
        with open(path) as handle:
            return handle.read(), path
    except OSError as error:
        sys.stderr.write(f"pfctl: cannot open the main config file!: {error.strerror}\n")
        return None, path


def _load(path, check_only, verbose, defines):
    text, name = _read_rules_file(path)
    ruleset = None
    if text is not None:
        try:
            ruleset = pfconf.parse(text, name, defines)
        except pfconf.PfSyntaxError as error:
            sys.stderr.write("\n".join(error.errors) + "\n")
    if ruleset is None:
        if not check_only:
            sys.stderr.write("pfctl: Syntax error in config file: pf rules not loaded\n")
        return 1
    if verbose:
        _print_ruleset(ruleset)
    if check_only:
        return 0
    now = int(time.time())
    tables = {name: {"flags": t["flags"], "addresses": list(t["addresses"]),
                     "added": {address: now for address in t["addresses"]}}
              for name, t in ruleset.pop("tables").items()}
    with _pf_state() as state:
        state["ruleset"] = dict(ruleset)
        state["file"] = name
        for table_name, table in tables.items():
            state["tables"][table_name] = table
    return 0


def _print_ruleset(ruleset):
    for option, value in ruleset["options"].items():
        if option == "skip":
            value = "on " + (value[0] if len(value) == 1 else "{ " + " ".join(value) + " }")
        print(f"set {option} {value}")
    for name, table in ruleset["tables"].items():
        if table.get("line"):
            print(pfconf.format_table_definition(name, table))
    for rule in _translation_order(ruleset["nat"]) + ruleset["rules"]:
        print(pfconf.format_rule(rule))


def _translation_order(rules):
    return [r for r in rules if r["action"] == "nat"] + [r for r in rules if r["action"] == "rdr"]


# ------------------------------------------------------------------------------------------ show

def _show(modifier, verbose):
    state = kernel.read("pf", EMPTY_STATE)
    if modifier == "rules":
        for rule in state["ruleset"]["rules"]:
            print(pfconf.format_rule(rule))
    elif modifier == "nat":
        for rule in _translation_order(state["ruleset"]["nat"]):
            print(pfconf.format_rule(rule))
    elif modifier == "info":
        _show_info(state, verbose)
    elif modifier == "Tables":
        for name in sorted(state["tables"]):
            print(name)
    elif modifier == "Running":
        print("Enabled" if state["enabled"] else "Disabled")
    elif modifier == "all":
        print("FILTER RULES:")
        _show("rules", verbose)
        print("\nTRANSLATION RULES:")
        _show("nat", verbose)
        print("\nINFO:")
        _show_info(state, verbose)
        print("\nTABLES:")
        _show("Tables", verbose)
    # states, Sources, queue, labels...: no connection tracking is emulated, so nothing to list.


def _show_info(state, verbose):
    now = int(time.time())
    running = "Enabled" if state["enabled"] else "Disabled"
    if state["since"]:
        seconds = now - state["since"]
        days, rest = divmod(seconds, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        line = f"Status: {running} for {days} days {hours:02d}:{minutes:02d}:{seconds:02d}"
    else:
        line = f"Status: {running}"
    debug = pfconf.DEBUG_LEVELS[state["ruleset"]["options"].get("debug", "urgent")]
    out = [f"{line:<44s}{'Debug: ' + debug:>15s}", ""]
    if verbose:
        out += ["Hostid:   0x00000000", "Checksum: 0x" + "0" * 32, ""]
    loginterface = state["ruleset"]["options"].get("loginterface")
    if loginterface and loginterface != "none":
        out.append(f"Interface Stats for {loginterface:<16s} {'IPv4':>5s} {'IPv6':>16s}")
        out.append(f"  {'Bytes In':<25s} {0:>14d} {0:>16d}")
        out.append(f"  {'Bytes Out':<25s} {0:>14d} {0:>16d}")
        for direction in ("In", "Out"):
            out.append(f"  Packets {direction}")
            out.append(f"    {'Passed':<23s} {0:>14d} {0:>16d}")
            out.append(f"    {'Blocked':<23s} {0:>14d} {0:>16d}")
        out.append("")
    runtime = now - state["since"]
    rate = f"{0.0:>14.1f}/s" if runtime > 0 else f"{'':>14s}"
    out.append(f"{'State Table':<27s} {'Total':>14s} {'Rate':>16s}")
    out.append(f"  {'current entries':<25s} {0:>14d} {'':>14s}")
    out += [f"  {name:<25s} {0:>14d} {rate}" for name in STATE_COUNTERS]
    out.append("Counters")
    out += [f"  {name:<25s} {0:>14d} {rate}" for name in COUNTERS]
    print("\n".join(out))


# ------------------------------------------------------------------------------------------ flush

def _flush(modifier, quiet):
    messages = []
    with _pf_state() as state:
        if modifier in ("rules", "all"):
            state["ruleset"]["rules"] = []
            messages.append("rules cleared")
        if modifier in ("nat", "all"):
            state["ruleset"]["nat"] = []
            messages.append("nat cleared")
        if modifier in ("Tables", "all"):
            messages.append(f"{len(state['tables'])} tables deleted.")
            state["tables"] = {}
        if modifier in ("states", "all"):
            # States are connection tracking entries marked with a generation: a new one orphans them all.
            state["state_generation"] = state.get("state_generation", 0) + 1
            messages.append("0 states cleared")
        if modifier in ("Sources", "all"):
            messages.append("source tracking entries cleared")
        if modifier in ("info", "all"):
            messages.append("pf: statistics cleared")
        if modifier in ("Reset", "all"):
            state["ruleset"]["options"] = {}
            messages.append("pf: interface flags reset")
    if not quiet:
        for message in messages:
            sys.stderr.write(message + "\n")


# ------------------------------------------------------------------------------------------ tables

def _table_command(name, command, addresses, quiet, dry_run, verbose):
    command = _lookup(command, TABLE_COMMANDS, "table command")
    if command == "expire":
        return _expire(name, addresses, quiet, dry_run, verbose)
    messages = []
    now = int(time.time())
    with _pf_state(enforce=command not in ("show", "test")) as state:
        tables = state["tables"]
        table = tables.get(name)
        if command in ("add", "replace") and table is None:
            table = {"flags": [], "addresses": []}
            if not dry_run:
                tables[name] = table
            messages.append("1 table created.")
        elif table is None:
            raise PfctlError("Table does not exist.")
        entries = table["addresses"]
        if command == "show":
            for entry in entries:
                print(f"   {entry}" if not entry.startswith("!") else f"  {entry}")
        elif command == "add":
            new = [a for a in dict.fromkeys(_normalise(addresses)) if a not in entries]
            entries.extend(new)
            table.setdefault("added", {}).update({a: now for a in new})
            messages.append(f"{len(new)}/{len(addresses)} addresses added.")
        elif command == "delete":
            gone = [a for a in dict.fromkeys(_normalise(addresses)) if a in entries]
            table["addresses"] = [a for a in entries if a not in gone]
            messages.append(f"{len(gone)}/{len(addresses)} addresses deleted.")
        elif command == "flush":
            messages.append(f"{len(entries)} addresses deleted.")
            table["addresses"] = []
        elif command == "replace":
            table["addresses"] = list(dict.fromkeys(_normalise(addresses)))
            added = table.get("added", {})
            table["added"] = {a: added.get(a, now) for a in table["addresses"]}
        elif command == "kill":
            del tables[name]
            messages.append("1 table deleted.")
        elif command == "test":
            wanted = _normalise(addresses)
            matched = [a for a in wanted if a in entries]
            messages.append(f"{len(matched)}/{len(wanted)} addresses match.")
            if len(matched) != len(wanted):
                _print_messages(messages, quiet)
                return 2
    _print_messages(messages, quiet)
    return 0


def _expire(name, operands, quiet, dry_run, verbose):
    """-T expire SECONDS, as pfctl_table.c: delete the entries whose statistics were cleared (at insertion) more
    than SECONDS ago; "EXPIRED/CANDIDATES addresses expired."."""
    if len(operands) != 1:
        sys.stderr.write(USAGE)
        return 1
    lifetime = _strtonum(operands[0], 0, 2 ** 32 - 1)
    if isinstance(lifetime, str):
        raise PfctlError(f"expiry time: {lifetime}")
    now = int(time.time())
    with _pf_state() as state:
        table = state["tables"].get(name)
        if table is None:
            raise PfctlError("Table does not exist.")
        added = table.setdefault("added", {})
        old = [a for a in table["addresses"] if now - added.get(a, now) > lifetime]
        if not dry_run:
            table["addresses"] = [a for a in table["addresses"] if a not in old]
            for address in old:
                added.pop(address, None)
    _print_messages([f"{0 if dry_run else len(old)}/{len(old)} addresses expired"
                     + (" (syntax only)." if dry_run else ".")], quiet)
    if verbose and not dry_run:
        for address in old:
            print(f"D {'!' if address.startswith('!') else ' '}{address.lstrip('!')}")
    return 0


def _strtonum(text, low, high):
    """strtonum(3): the number, or its error string ("invalid", "too small", "too large")."""
    if not re.fullmatch(r"\s*[+-]?[0-9]+", text):
        return "invalid"
    number = int(text)
    return "too small" if number < low else "too large" if number > high else number


def _print_messages(messages, quiet):
    if not quiet:
        for message in messages:
            sys.stderr.write(message + "\n")


def _normalise(addresses):
    result = []
    for text in addresses:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise PfctlError(f"{text}: could not parse host specification") from None
        full = network.max_prefixlen
        result.append(str(network.network_address) if network.prefixlen == full else str(network))
    return result
