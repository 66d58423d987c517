"""The deploy's benchmark on lab hosts: `make bench` (or `python -m bench.run`) prints a table of figures.

What it measures, each through the real pyinfra CLI over real SSH (bench/counted_pyinfra.py counts the remote
commands in the CLI's own process):
- a fresh deploy, and a re-run that changes nothing: wall time, remote commands (facts, operations, uploads),
  wall time per command and the mean round trip of one command;
- both again with Nagle's algorithm left on (TORJAIL_SSH_NAGLE=1): the cost that TCP_NODELAY saves;
- four fresh lab hosts deployed at once, against one.
Figures only: nothing here passes or fails on a time. The lab hosts (bench1..bench4, on free lab indices) are
destroyed at the end, as is anything they left from an earlier run.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab import host  # noqa: E402

COUNTED_PYINFRA = ROOT / "bench" / "counted_pyinfra.py"
HOSTS = ("bench1", "bench2", "bench3", "bench4")
PREFERRED_INDICES = (2, 3, 5, 6)
PASSPHRASE = "lab bench passphrase 91c4"
RUN_SECONDS = 900


def quiet(text):
    pass


def deploy(names, nagle=False):
    """One run of `pyinfra lab/inventory.py deploy.py` against the lab hosts `names`: a dict of figures."""
    with tempfile.NamedTemporaryFile(suffix=".json") as counts_file:
        env = {**os.environ, "TORJAIL_LAB_HOST": ",".join(names), "TORJAIL_GELI_PASSPHRASE": PASSPHRASE,
               "TORJAIL_BENCH_COUNTS": counts_file.name, "TORJAIL_LAB_SETTINGS": "{}"}
        env.pop("TORJAIL_SSH_NAGLE", None)
        if nagle:
            env["TORJAIL_SSH_NAGLE"] = "1"
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(COUNTED_PYINFRA), "lab/inventory.py", "deploy.py", "-y"],
                                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=RUN_SECONDS)
        wall = time.monotonic() - started
        if result.returncode != 0:
            raise SystemExit(f"deploy on {','.join(names)} failed:\n{result.stdout[-5000:]}")
        counts = json.loads(Path(counts_file.name).read_text())
    commands = sum(kind["count"] for kind in counts.values())
    return {"wall": wall, "facts": counts["fact"]["count"], "operations": counts["operation"]["count"],
            "uploads": counts["upload"]["count"], "commands": commands,
            "round_trip": sum(kind["seconds"] for kind in counts.values()) / max(commands, 1)}


def fresh_hosts(names):
    """Bring the lab hosts `names` up afresh, each on its preferred lab index when that one is free."""
    for name in names:
        host.destroy(name, log=quiet)
    for name, index in zip(names, PREFERRED_INDICES):
        taken = {host.read_state(other)["index"] for other in host.known_hosts()}
        host.up(name, None if index in taken else index, log=quiet)


def median_run(names, nagle, repeats):
    """The run with the median wall time of `repeats` no-change re-runs."""
    runs = sorted((deploy(names, nagle=nagle) for _ in range(repeats)), key=lambda run: run["wall"])
    return runs[len(runs) // 2]


def measure(repeats):
    rows = []
    fresh_hosts(HOSTS[:1])
    rows.append(("fresh deploy, 1 host", deploy(HOSTS[:1])))
    rows.append(("no-change re-run, 1 host", median_run(HOSTS[:1], False, repeats)))
    rows.append(("no-change re-run, Nagle on", median_run(HOSTS[:1], True, repeats)))
    fresh_hosts(HOSTS[:1])
    rows.append(("fresh deploy, Nagle on", deploy(HOSTS[:1], nagle=True)))
    fresh_hosts(HOSTS)
    rows.append(("fresh deploy, 4 hosts at once", deploy(HOSTS)))
    rows.append(("no-change re-run, 4 hosts", median_run(HOSTS, False, repeats)))
    return rows


def table(rows):
    header = ("run", "wall s", "facts", "ops", "uploads", "commands", "wall/cmd ms", "round trip ms")
    lines = [header]
    for label, run in rows:
        lines.append((label, f"{run['wall']:.1f}", str(run["facts"]), str(run["operations"]), str(run["uploads"]),
                      str(run["commands"]), f"{1000 * run['wall'] / max(run['commands'], 1):.1f}",
                      f"{1000 * run['round_trip']:.1f}"))
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    text = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths)) + " |" for line in lines]
    text.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="no-change re-runs per figure (the median counts)")
    args = parser.parse_args(argv)
    host.require_root()
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    try:
        rows = measure(max(1, min(args.repeats, 9)))
    finally:
        for name in HOSTS:
            host.destroy(name, log=quiet)
    print(f"torjail deploy benchmark, {datetime.date.today().isoformat()}, {platform.node()} "
          f"({os.cpu_count()} CPUs), lab hosts over veth links")
    print(table(rows))
    fresh, again, nagle = rows[0][1], rows[1][1], rows[2][1]
    print(f"TCP_NODELAY saves {1000 * (nagle['wall'] - again['wall']) / max(again['commands'], 1):.1f} ms per "
          f"command on the no-change re-run; 4 hosts at once take {rows[4][1]['wall'] / fresh['wall']:.2f}x "
          "the wall time of one.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
