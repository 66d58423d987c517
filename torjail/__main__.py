"""Preview commands for operators, no server needed.

    python -m torjail check inventory.py
        validate every host's settings and every file that would be generated for it; exit 1 on any problem.
    python -m torjail render inventory.py --host NAME --out DIR
        write every file that would be placed on that server under DIR at its server path (DIR/etc/pf.conf, ...).
"""

import argparse
import os
import sys
from pathlib import Path

from torjail.checks import check_file
from torjail.render import PREVIEW_EXT_IF, render_all
from torjail.settings import SettingsError, load_inventory, settings_for_inventory


def _load(inventory_path):
    if not Path(inventory_path).is_file():
        raise SettingsError([f"inventory file not found: {inventory_path}"])
    return settings_for_inventory(load_inventory(inventory_path))


def _detect_note(settings):
    if settings.ext_if == "detect":
        return (f"{settings.host_name}: note: ext_if is 'detect': previewed with {PREVIEW_EXT_IF}; "
                "the deploy uses the interface of the server's default route")
    return None


def check(args):
    all_settings = _load(args.inventory)
    failed = False
    for name, settings in all_settings.items():
        files = render_all(settings)
        problems = [f"{name}: {generated.path}: {problem}" for generated in files for problem in check_file(generated)]
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
    note = None if args.ext_if else _detect_note(settings)
    if note:
        print(note, file=sys.stderr)
    out = Path(args.out)
    for generated in render_all(settings, ext_if=args.ext_if):
        target = out / generated.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(generated.content)
        os.chmod(target, 0o644)
        print(target)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m torjail", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check_parser = commands.add_parser("check", help="validate settings and generated files of every host")
    check_parser.add_argument("inventory")
    check_parser.set_defaults(run=check)
    render_parser = commands.add_parser("render", help="write one host's generated files under a directory")
    render_parser.add_argument("inventory")
    render_parser.add_argument("--host", required=True)
    render_parser.add_argument("--out", required=True)
    render_parser.add_argument("--ext-if", help="external interface to use when the settings say 'detect'")
    render_parser.set_defaults(run=render)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except SettingsError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
