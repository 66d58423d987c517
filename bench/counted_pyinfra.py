"""The pyinfra CLI, counting the remote commands it runs: `python bench/counted_pyinfra.py ARGS...`.

The benchmark needs how many commands a deploy sends to the server and what each costs. This wrapper counts them
in the process that runs them, with the CLI otherwise unchanged: every shell command of an SSH connector (a fact's
or an operation's, told apart by whether a fact is being gathered) and every file upload, each with its duration.
At exit it writes the counts as JSON to the file named by TORJAIL_BENCH_COUNTS:
{"fact": {"count": N, "seconds": S}, "operation": {...}, "upload": {...}}.
"""

import atexit
import functools
import json
import os
import sys
import time

import gevent
from pyinfra.api import facts
from pyinfra.connectors.ssh import SSHConnector
from pyinfra_cli.main import main

COUNTS = {kind: {"count": 0, "seconds": 0.0} for kind in ("fact", "operation", "upload")}
_gathering = set()  # greenlets gathering a fact now (pyinfra runs one greenlet per host)


def _timed(kind_of):
    def wrap(method):
        @functools.wraps(method)
        def counted(*args, **kwargs):
            kind = kind_of()
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                COUNTS[kind]["count"] += 1
                COUNTS[kind]["seconds"] += time.perf_counter() - started
        return counted
    return wrap


def _gathering_fact(function):
    @functools.wraps(function)
    def marked(*args, **kwargs):
        greenlet = gevent.getcurrent()
        _gathering.add(greenlet)
        try:
            return function(*args, **kwargs)
        finally:
            _gathering.discard(greenlet)
    return marked


def _write_counts():
    path = os.environ.get("TORJAIL_BENCH_COUNTS")
    if path:
        with open(path, "w") as handle:
            json.dump(COUNTS, handle)


facts._get_fact = _gathering_fact(facts._get_fact)
SSHConnector.run_shell_command = _timed(lambda: "fact" if gevent.getcurrent() in _gathering else "operation")(
    SSHConnector.run_shell_command)
SSHConnector.put_file = _timed(lambda: "upload")(SSHConnector.put_file)
atexit.register(_write_counts)

if __name__ == "__main__":
    sys.argv[0] = "pyinfra"
    sys.exit(main())
