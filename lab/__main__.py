"""Command line of the lab: python -m lab up|stop|reboot|destroy|status [NAME] [--index N] (as root)."""

import argparse
import sys

from lab import host


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lab", description="Manage lab hosts (local FreeBSD stand-ins).")
    parser.add_argument("action", choices=["up", "stop", "reboot", "destroy", "status"])
    parser.add_argument("name", nargs="?", help="lab host name (status without a name lists every lab host)")
    parser.add_argument("--index", type=int, help="network index N (1..99): the host gets 198.18.N.2")
    args = parser.parse_args(argv)
    if args.name is None and args.action != "status":
        parser.error(f"{args.action} needs a lab host name")
    try:
        if args.action == "status":
            names = [args.name] if args.name else host.known_hosts()
            all_running = bool(names)
            for name in names:
                running, text = host.status(name)
                print(text)
                all_running = all_running and running
            return 0 if all_running else 1
        host.require_root()
        if args.action == "up":
            host.up(args.name, args.index)
            print(host.status(args.name)[1])
        elif args.action == "stop":
            host.stop(args.name)
        elif args.action == "reboot":
            host.reboot(args.name)
            print(host.status(args.name)[1])
        elif args.action == "destroy":
            host.destroy(args.name)
    except (host.LabError, ValueError) as err:
        print(f"lab: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
