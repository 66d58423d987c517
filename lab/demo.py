"""`make demo`: bring a lab host up and say how to reach it (the full demo flow builds on this)."""

import os
import sys

from lab import host, paths

NAME = os.environ.get("TORJAIL_LAB_HOST", "lab1")


def main():
    try:
        host.require_root()
        host.up(NAME)
    except host.LabError as err:
        print(f"demo: {err}", file=sys.stderr)
        return 1
    print(host.status(NAME)[1])
    print(f"\nReach it:   ssh -F {paths.ssh_config_path(NAME)} {NAME}")
    print("Deploy:     .venv/bin/pyinfra lab/inventory.py deploy.py")
    print(f"Tear down:  .venv/bin/python -m lab destroy {NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
