"""The lab's route(8) and daemon(8): FreeBSD's output format and behaviour, as the deploy relies on them."""

import re
import time

import pytest

pytestmark = pytest.mark.lab


def test_route_get_default_prints_freebsd_fields(lab_host):
    status, output, _ = lab_host.run("route -n get default")
    assert status == 0
    lines = output.splitlines()
    assert lines[0] == "   route to: default"
    assert "destination: default" in lines
    assert f"    gateway: 198.18.{lab_host.index}.1" in lines
    assert "  interface: vtnet0" in lines
    assert re.match(r"^      flags: <UP,GATEWAY,DONE,STATIC>$", lines[lines.index("  interface: vtnet0") + 1])


def test_route_get_inet_default_and_errors(lab_host):
    assert "interface: vtnet0" in lab_host.run("route -n get -inet default")[1]
    status, _, error = lab_host.run("route -n get 192.0.2.77")
    assert status == 1 and error.strip() == "route: route has not been found"
    status, _, error = lab_host.run("route -k get default")
    assert status == 64 and "route: illegal option -- k" in error


def test_daemon_detaches_and_writes_the_command_pid(lab_host):
    started = time.monotonic()
    status, _, _ = lab_host.run("daemon -f -p /tmp/daemon-test.pid sh -c 'sleep 30'; echo returned")
    assert status == 0 and time.monotonic() - started < 10, "daemon(8) must return at once"
    pid = ""
    for _ in range(20):
        pid = lab_host.run("cat /tmp/daemon-test.pid 2>/dev/null")[1].strip()
        if pid:
            break
        time.sleep(0.2)
    assert pid.isdigit()
    assert lab_host.run(f"kill -0 {pid}")[0] == 0, "the pid file names the running command"
    assert lab_host.run(f"kill {pid}; rm -f /tmp/daemon-test.pid")[0] == 0


def test_daemon_refuses_unknown_options(lab_host):
    status, _, error = lab_host.run("daemon -Z true")
    assert status == 1 and "daemon: illegal option -- Z" in error and "usage: daemon" in error
