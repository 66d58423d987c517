"""The pyinfra CLI, counting the remote commands it runs: `python bench/counted_pyinfra.py ARGS...`.

The benchmark needs how many commands a deploy sends to the server, what each costs and where they go. This
wrapper counts them in the process that runs them, with the CLI otherwise unchanged: every shell command of an SSH
connector (a fact's or an operation's, told apart by whether a fact is being gathered) and every file upload, each
with its duration and the name of the fact or operation that sent it. At exit it writes the counts as JSON to the
file named by TORJAIL_BENCH_COUNTS:
{"fact": {"count": N, "seconds": S, "names": {"Sysctl": N, ...}}, "operation": {...}, "upload": {...}}.
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

COUNTS = {kind: {"count": 0, "seconds": 0.0, "names": {}} for kind in ("fact", "operation", "upload")}
_gathering = {}  # greenlet -> name of the fact it gathers now (pyinfra runs one greenlet per host)


def _operation_name(connector):
    """The name of the operation the connector's host is executing ("?" outside one)."""
    op_hash = connector.host.nested_executing_op_hash or connector.host.executing_op_hash
    if op_hash is None:
        return "?"
    return ", ".join(sorted(connector.state.get_op_meta(op_hash).names)) or "?"


def _timed(kind_and_name):
    def wrap(method):
        @functools.wraps(method)
        def counted(connector, *args, **kwargs):
            kind, name = kind_and_name(connector)
            started = time.perf_counter()
            try:
                return method(connector, *args, **kwargs)
            finally:
                COUNTS[kind]["count"] += 1
                COUNTS[kind]["seconds"] += time.perf_counter() - started
                COUNTS[kind]["names"][name] = COUNTS[kind]["names"].get(name, 0) + 1
        return counted
    return wrap


def _command_kind(connector):
    fact = _gathering.get(gevent.getcurrent())
    return ("fact", fact) if fact else ("operation", _operation_name(connector))


def _gathering_fact(function):
    @functools.wraps(function)
    def marked(state, host, cls, *args, **kwargs):
        greenlet = gevent.getcurrent()
        _gathering[greenlet] = cls.__name__
        try:
            return function(state, host, cls, *args, **kwargs)
        finally:
            _gathering.pop(greenlet, None)
    return marked


def _write_counts():
    path = os.environ.get("TORJAIL_BENCH_COUNTS")
    if path:
        with open(path, "w") as handle:
            json.dump(COUNTS, handle)


facts._get_fact = _gathering_fact(facts._get_fact)
SSHConnector.run_shell_command = _timed(_command_kind)(SSHConnector.run_shell_command)
SSHConnector.put_file = _timed(lambda connector: ("upload", _operation_name(connector)))(SSHConnector.put_file)
atexit.register(_write_counts)

if __name__ == "__main__":
    sys.argv[0] = "pyinfra"
    sys.exit(main())
