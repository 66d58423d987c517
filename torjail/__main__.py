"""Preview and report commands for operators.

    python -m torjail check inventory.py
        validate every host's settings and every file that would be generated for it; exit 1 on any problem.
    python -m torjail check --file KIND FILE...
        validate files of one kind (torrc, pf.conf, jail.conf, rc.conf, crontab) with the same checks; exit 1 on any.
    python -m torjail render inventory.py --host NAME --out DIR
        write every file that would be placed on that server under DIR at its server path (DIR/etc/pf.conf, ...).
    python -m torjail status inventory.py [--charts DIR] [--json]
        ask every relay (over SSH, all at once) how it is; one row each, a PNG chart each; exit 1 when one needs you.
    python -m torjail budget inventory.py
        show each relay's traffic plan: quota, reserve, allowance per period, rate, awake share, worst month.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from torjail import chart, status
from torjail.budget import decimal_amount, parse_traffic, tor_amount
from torjail.checks import KINDS, check_file, check_text
from torjail.checks.torrc import TorNotFound, check_torrc_settings
from torjail.family import torrc_lines
from torjail.render import PREVIEW_EXT_IF, render_all
from torjail.settings import (
    SettingsError, build_settings, expect_interface_name, host_settings, load_inventory, settings_for_inventory,
)
from torjail.survey import survey


def _load(inventory_path, build=host_settings):
    if not Path(inventory_path).is_file():
        raise SettingsError([f"inventory file not found: {inventory_path}"])
    return settings_for_inventory(load_inventory(inventory_path), build)


def _detect_note(settings):
    if settings.ext_if == "detect":
        return (f"{settings.host_name}: note: ext_if is 'detect': previewed with {PREVIEW_EXT_IF}; "
                "the deploy uses the interface of the server's default route")
    return None


def _family(all_settings):
    """A relay's torrc family lines among every relay of the inventory (`all_settings`: each host's)."""
    relays = [relay for settings in all_settings.values() for relay in settings.relays]
    return lambda relay: torrc_lines(relay, relays)


def file_problems(host_name, generated):
    """Problems of one generated file, each naming the host, and for torrc the settings tor's complaint is about."""
    if generated.kind != "torrc":
        return [f"{host_name}: {generated.path}: {problem}" for problem in check_file(generated)]
    return [
        f"{host_name}: " + "".join(f"setting '{setting}': " for setting in settings) + f"{generated.path}: {problem}"
        for settings, problem in check_torrc_settings(generated.content)
    ]


def path_problems(kind, path):
    """Problems of the file at path read as a file of that kind, each naming the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        return [f"{path}: cannot read: {error}"]
    try:
        problems = check_text(kind, text, path)
    except TorNotFound as error:
        return [f"{path}: {error}"]
    return problems if kind == "pf.conf" else [f"{path}: {problem}" for problem in problems]  # pf's name it


def check_files(kind, paths):
    """`check --file KIND FILE...`: every problem on stderr, nothing on stdout; 1 if any file has one."""
    problems = [problem for path in paths for problem in path_problems(kind, path)]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def check(args):
    if args.kind:
        return check_files(args.kind, args.paths)
    all_settings = _load(args.paths[0])
    failed = False
    for name, settings in all_settings.items():
        files = render_all(settings, family=_family(all_settings))
        problems = [problem for generated in files for problem in file_problems(name, generated)]
        for problem in problems:
            print(problem, file=sys.stderr)
        failed |= bool(problems)
        if not problems:
            print(f"{name}: ok: settings valid, {len(files)} files generated and checked")
    return 1 if failed else 0


def render(args):
    all_settings = _load(args.inventory)
    if args.host not in all_settings:
        print(f"host {args.host!r} is not in {args.inventory} (hosts: {', '.join(all_settings)})", file=sys.stderr)
        return 2
    settings = all_settings[args.host]
    if args.ext_if:
        settings = settings.with_ext_if(args.ext_if)
    note = _detect_note(settings)
    if note:
        print(note, file=sys.stderr)
    out = Path(args.out)
    for generated in render_all(settings, family=_family(all_settings)):
        target = out / generated.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(generated.content)
        os.chmod(target, 0o644)
        print(target)
    return 0


def report(args):
    if not Path(args.inventory).is_file():
        raise SettingsError([f"inventory file not found: {args.inventory}"])
    inventory = load_inventory(args.inventory)
    rows = survey(inventory, settings_for_inventory(inventory))
    charts = Path(args.charts)
    charts.mkdir(parents=True, exist_ok=True)
    for row in rows:
        path = charts / f"{row['host']}.png"
        row["chart"] = str(path) if chart.write(row, path) else None
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
    else:
        print(status.table(rows))
        written = [row["chart"] for row in rows if row["chart"]]
        if written:
            print(f"charts: {', '.join(written)}")
    return 1 if any(row["next"] for row in rows) else 0


def budget_lines(settings, name=None):
    """What `python -m torjail budget` prints for one relay (`name`: how its lines begin, its host's name)."""
    name, plan = name or settings.host_name, settings.plan
    if plan is None:
        traffic = settings.torrc_traffic
        accounting = f"AccountingMax {traffic['AccountingMax']}" if traffic["AccountingMax"] else "no accounting"
        return [f"{name}: no traffic_quota: {accounting}, "
                f"RelayBandwidthRate {traffic['RelayBandwidthRate'] or 'unlimited'}"]
    counted = "both directions" if settings.traffic_quota_both_directions else "one direction"
    period = plan.accounting_start.split()[0]
    return [
        f"{name}: quota {decimal_amount(plan.quota)} a month ({plan.quota} bytes, {counted} counted)",
        f"{name}: reserve {decimal_amount(plan.reserve)} a month ({plan.reserve} bytes) for other services",
        f"{name}: allowance {tor_amount(plan.accounting_max)} a {period} ({plan.accounting_max} bytes, "
        f"AccountingRule {plan.accounting_rule}, AccountingStart {plan.accounting_start})",
        f"{name}: rate {tor_amount(plan.rate)}/s each way, burst {tor_amount(plan.burst)} "
        f"({plan.rate * 8 / 10**6:.2f} Mbit/s)",
        f"{name}: awake {plan.awake_share:.1%} of every {period} at full rate",
        f"{name}: worst-case month {decimal_amount(plan.worst_month)} ({plan.worst_month} bytes) of "
        f"{decimal_amount(plan.available)} ({plan.available} bytes) available",
    ]


def host_budget_lines(settings):
    """A host's relays, each as budget_lines, its listed relays named HOST/JAIL; a host whose quota is split
    among several relays ends with what they use together."""
    if settings.jails is None:
        return budget_lines(settings)
    relays = settings.relays
    lines = [line for relay in relays for line in budget_lines(relay, f"{settings.host_name}/{relay.jail_name}")]
    if settings.traffic_quota is not None and len(relays) > 1:
        quota = parse_traffic(settings.traffic_quota)
        available = quota - parse_traffic(settings.traffic_reserve or "0 B")
        worst = sum(relay.plan.worst_month for relay in relays)
        lines.append(f"{settings.host_name}: quota {decimal_amount(quota)} a month split evenly among "
                     f"{len(relays)} relays: together a worst-case month of {decimal_amount(worst)} ({worst} bytes) "
                     f"of {decimal_amount(available)} ({available} bytes) available")
    return lines


def budget(args):
    for settings in _load(args.inventory, build_settings).values():
        print("\n".join(host_budget_lines(settings)))
    return 0


def _interface(value):
    """--ext-if: a real interface name; the preview has no server to ask what "detect" stands for."""
    try:
        return expect_interface_name(value)
    except ValueError as error:
        hint = " ('detect' is resolved by the deploy on the server; a preview needs the name)" \
            if value == "detect" else ""
        raise argparse.ArgumentTypeError(f"{error}{hint}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m torjail", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check_parser = commands.add_parser(
        "check", help="validate settings and generated files of every host, or files of one kind",
        usage="%(prog)s INVENTORY | %(prog)s --file KIND FILE...")
    check_parser.add_argument("paths", nargs="+", metavar="INVENTORY | FILE",
                              help="an inventory; with --file, the files to check")
    check_parser.add_argument("--file", dest="kind", metavar="KIND", choices=KINDS,
                              help=f"check each FILE as a file of this kind ({', '.join(KINDS)})")
    check_parser.set_defaults(run=check)
    render_parser = commands.add_parser("render", help="write one host's generated files under a directory")
    render_parser.add_argument("inventory")
    render_parser.add_argument("--host", required=True)
    render_parser.add_argument("--out", required=True)
    render_parser.add_argument("--ext-if", type=_interface,
                               help="external interface to use when the settings say 'detect' (like vtnet0)")
    render_parser.set_defaults(run=render)
    status_parser = commands.add_parser("status", help="one row and one chart per relay, asked over SSH")
    status_parser.add_argument("inventory")
    status_parser.add_argument("--charts", default="status", help="directory for the PNG charts (default: ./status)")
    status_parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    status_parser.set_defaults(run=report)
    budget_parser = commands.add_parser("budget", help="show every relay's traffic plan against its quota")
    budget_parser.add_argument("inventory")
    budget_parser.set_defaults(run=budget)
    args = parser.parse_args(argv)
    if args.command == "check" and not args.kind and len(args.paths) != 1:
        check_parser.error("one inventory, or --file KIND with the files to check")
    try:
        return args.run(args)
    except SettingsError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
