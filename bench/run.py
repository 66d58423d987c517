"""The deploy's benchmark on lab hosts: `make bench` (or `python -m bench.run`) prints tables of figures.

What it measures, each through the real pyinfra CLI over real SSH (bench/counted_pyinfra.py counts the remote
commands in the CLI's own process):
- a fresh deploy, and a re-run that changes nothing: wall time, remote commands (facts, operations, uploads),
  wall time per command and the mean round trip of one command;
- both again with Nagle's algorithm left on (TORJAIL_SSH_NAGLE=1): the cost that TCP_NODELAY saves;
- four fresh lab hosts deployed at once, against one;
- the remote commands of the no-change re-run, by fact or operation: where its round trips go;
- over a wide-area link (bench/wan.py: a relay that adds 0, 50 or 100 ms per round trip), the fresh deploy and
  the no-change re-run (the median of --repeats runs) of one lab host, with our connection (TCP_NODELAY) and
  pyinfra's default one (Nagle on): remote commands, round trips the relay saw, round trips waited (the wall
  time added over the 0 ms run, divided by the added round trip) and wall time; then both of four lab hosts at
  once at 100 ms, each behind its own relay.
Figures only: nothing here passes or fails on a time. The lab hosts (bench1..bench4) are destroyed at the end, as
is anything they left from an earlier run. They take the lab indices given by --indices, or by
TORJAIL_BENCH_INDICES (four comma-separated numbers, default 2,3,5,6: other work on the machine may use other
ones), each when it is free.
"""
import argparse
import contextlib
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

from bench import wan  # noqa: E402
from lab import host, paths  # noqa: E402

COUNTED_PYINFRA = ROOT / "bench" / "counted_pyinfra.py"
HOSTS = ("bench1", "bench2", "bench3", "bench4")
DEFAULT_INDICES = "2,3,5,6"
WAN_ROUND_TRIPS_MS = (0, 50, 100)
PASSPHRASE = "lab bench passphrase 91c4"
RUN_SECONDS = 900
OURS = "ours (TCP_NODELAY)"


def quiet(text):
    pass


def deploy(names, nagle=False, relays=()):
    """One run of `pyinfra lab/inventory.py deploy.py` against the lab hosts `names`: a dict of figures.

    With `relays` (bench/wan.py, one per name), each lab host is reached through its own, and the figures hold
    the round trips the relays saw."""
    with tempfile.TemporaryDirectory() as directory:
        counts_file = os.path.join(directory, "counts.json")
        connections = {name: wan.connection_data(name, relay.port, directory) for name, relay in zip(names, relays)}
        env = {**os.environ, "TORJAIL_LAB_HOST": ",".join(names), "TORJAIL_GELI_PASSPHRASE": PASSPHRASE,
               "TORJAIL_BENCH_COUNTS": counts_file, "TORJAIL_LAB_HOST_SETTINGS": json.dumps(connections)}
        env.pop("TORJAIL_SSH_NAGLE", None)
        if nagle:
            env["TORJAIL_SSH_NAGLE"] = "1"
        round_trips = sum(relay.round_trips for relay in relays)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(COUNTED_PYINFRA), "lab/inventory.py", "deploy.py", "-y"],
                                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=RUN_SECONDS)
        wall = time.monotonic() - started
        if result.returncode != 0:
            raise SystemExit(f"deploy on {','.join(names)} failed:\n{result.stdout[-5000:]}")
        counts = json.loads(Path(counts_file).read_text())
    commands = sum(kind["count"] for kind in counts.values())
    return {"wall": wall, "facts": counts["fact"]["count"], "operations": counts["operation"]["count"],
            "uploads": counts["upload"]["count"], "commands": commands,
            "round_trip": sum(kind["seconds"] for kind in counts.values()) / max(commands, 1),
            "round_trips": (sum(relay.round_trips for relay in relays) - round_trips) if relays else None,
            "names": {kind: counts[kind]["names"] for kind in counts}}


def fresh_hosts(names, indices):
    """Bring the lab hosts `names` up afresh, each on its lab index in `indices` when that one is free."""
    for name in names:
        host.destroy(name, log=quiet)
    for name, index in zip(names, indices):
        taken = {state["index"] for state in map(host.read_state, host.known_hosts()) if state}
        host.up(name, None if index in taken else index, log=quiet)


def median_run(names, nagle, repeats, relays=()):
    """The run with the median wall time of `repeats` no-change re-runs (through `relays`, as `deploy` takes
    them)."""
    runs = sorted((deploy(names, nagle=nagle, relays=relays) for _ in range(repeats)), key=lambda run: run["wall"])
    return runs[len(runs) // 2]


def measure(repeats, indices):
    rows = []
    fresh_hosts(HOSTS[:1], indices)
    rows.append(("fresh deploy, 1 host", deploy(HOSTS[:1])))
    rows.append(("no-change re-run, 1 host", median_run(HOSTS[:1], False, repeats)))
    rows.append(("no-change re-run, Nagle on", median_run(HOSTS[:1], True, repeats)))
    fresh_hosts(HOSTS[:1], indices)
    rows.append(("fresh deploy, Nagle on", deploy(HOSTS[:1], nagle=True)))
    fresh_hosts(HOSTS, indices)
    rows.append(("fresh deploy, 4 hosts at once", deploy(HOSTS)))
    rows.append(("no-change re-run, 4 hosts", median_run(HOSTS, False, repeats)))
    return rows


def measure_wan(indices, repeats):
    """The fresh deploy and the no-change re-run (the median of `repeats`) of one lab host through a delaying
    relay, at each round trip of WAN_ROUND_TRIPS_MS, with our connection and with pyinfra's default one; then of
    four lab hosts at once, each through its own relay, at the longest round trip with our connection: (run, ms,
    connection, figures) rows."""
    rows = []
    name = HOSTS[0]
    for nagle, connection in ((False, OURS), (True, "pyinfra default")):
        for round_trip_ms in WAN_ROUND_TRIPS_MS:
            fresh_hosts([name], indices)
            with wan.DelayRelay(_ssh_target(name), round_trip_ms / 1000, lifetime=4 * RUN_SECONDS) as relay:
                rows.append(("fresh deploy", round_trip_ms, connection, deploy([name], nagle, [relay])))
                rows.append(("no-change re-run", round_trip_ms, connection,
                             median_run([name], nagle, repeats, [relay])))
    round_trip_ms = WAN_ROUND_TRIPS_MS[-1]
    fresh_hosts(HOSTS, indices)
    with contextlib.ExitStack() as stack:
        relays = [stack.enter_context(wan.DelayRelay(_ssh_target(name), round_trip_ms / 1000,
                                                     lifetime=4 * RUN_SECONDS)) for name in HOSTS]
        rows.append(("fresh deploy, 4 hosts at once", round_trip_ms, OURS, deploy(list(HOSTS), False, relays)))
        rows.append(("no-change re-run, 4 hosts", round_trip_ms, OURS,
                     median_run(list(HOSTS), False, repeats, relays)))
    return rows


def _ssh_target(name):
    return paths.address(host.read_state(name)["index"]), 22


def markdown(header, lines):
    """A markdown table of `lines` (tuples of strings) under `header`, its columns aligned."""
    lines = [header] + lines
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    text = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths)) + " |" for line in lines]
    text.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(text)


def table(rows):
    header = ("run", "wall s", "facts", "ops", "uploads", "commands", "wall/cmd ms", "round trip ms")
    return markdown(header, [
        (label, f"{run['wall']:.1f}", str(run["facts"]), str(run["operations"]), str(run["uploads"]),
         str(run["commands"]), f"{1000 * run['wall'] / max(run['commands'], 1):.1f}",
         f"{1000 * run['round_trip']:.1f}") for label, run in rows])


def wan_table(rows):
    """The WAN rows as a table. 'round trips (relay)' are the ones the relay saw (bench/wan.py: every time the client
    sent after the server, waited for or not); 'round trips waited' is the wall time over the same run at 0 ms
    divided by the added round trip: the round trips the run waited for, one after the other."""
    at_zero = {(label, connection): run["wall"] for label, round_trip_ms, connection, run in rows
               if round_trip_ms == 0}
    lines = []
    for label, round_trip_ms, connection, run in rows:
        zero = at_zero.get((label, connection))
        added = (run["wall"] - zero) / (round_trip_ms / 1000) if round_trip_ms and zero is not None else None
        lines.append((label, str(round_trip_ms), connection, str(run["commands"]), str(run["round_trips"]),
                      "-" if added is None else f"{added:.0f}", f"{run['wall']:.1f}"))
    header = ("run", "RTT ms", "connection", "commands", "round trips (relay)", "round trips waited", "wall s")
    return markdown(header, lines)


def command_list(run):
    """The remote commands of a run by fact or operation, most first, as lines of text."""
    counted = [(count, name, kind) for kind, names in run["names"].items() for name, count in names.items()]
    return "\n".join(f"{count:4d}  {name} ({kind})" for count, name, kind in sorted(counted, key=lambda item:
                                                                                       (-item[0], item[1])))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="no-change re-runs per figure (the median counts)")
    parser.add_argument("--indices", default=os.environ.get("TORJAIL_BENCH_INDICES", DEFAULT_INDICES),
                        help="lab indices of bench1..bench4, comma-separated (default: TORJAIL_BENCH_INDICES, "
                             f"else {DEFAULT_INDICES})")
    args = parser.parse_args(argv)
    indices = [int(index) for index in args.indices.split(",")]
    if len(indices) != len(HOSTS):
        parser.error(f"--indices needs {len(HOSTS)} lab indices, got {args.indices!r}")
    host.require_root()
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    try:
        repeats = max(1, min(args.repeats, 9))
        rows = measure(repeats, indices)
        wan_rows = measure_wan(indices, repeats)
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
    print("\nremote commands of the no-change re-run, 1 host:")
    print(command_list(again))
    print("\nover a wide-area link (bench/wan.py), one fresh deploy each, the median of the no-change re-runs:")
    print(wan_table(wan_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
