"""A relay on a lab host of its own, deployed and unlocked through the real pyinfra CLI over real SSH.

Used by the end-to-end tests: `relay_host(name, index)` brings a lab host up (and destroys it afterwards),
`Relay.pyinfra(...)` runs `pyinfra lab/inventory.py DEPLOY_FILE` against it exactly as an operator would, with the
GELI passphrase in the environment.
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from lab import host, paths

ROOT = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
PASSPHRASE = "lab relay passphrase 7f3e"
SUITE_TIMEOUT = 900  # one run of tests/host
GRAND_TOTAL = re.compile(r"^\s*Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", re.MULTILINE)


class Relay:
    """One lab host with a relay deployed on it."""

    def __init__(self, name, index):
        self.name = name
        self.index = index
        self.address = paths.address(index)
        self.settings = {}  # the host data its pyinfra runs get (TORJAIL_LAB_SETTINGS)

    def run(self, command, input=None, timeout=120):
        """(status, stdout, stderr) of a command run on the lab host over ssh."""
        return host.ssh(self.name, command, input=input, timeout=timeout)

    def must(self, command, input=None, timeout=120):
        """The standard output of a command that must succeed on the lab host."""
        status, output, err = self.run(command, input=input, timeout=timeout)
        assert status == 0, f"{command}: exit {status}\n{output}{err}"
        return output

    def deployed(self, deploy_file, *args, **kwargs):
        """The result of a pyinfra run with this host's settings that must succeed."""
        result = self.pyinfra(deploy_file, *args, settings=self.settings, **kwargs)
        assert result.returncode == 0, result.stdout[-6000:]
        return result

    def pyinfra(self, deploy_file, *args, passphrase=PASSPHRASE, settings=None, timeout=900, yes=True):
        """Run the real pyinfra CLI against this lab host; returns the CompletedProcess (stdout and stderr joined).
        With yes=False pyinfra runs without -y: it detects and lists the changes first (and a --dry run stops
        there, as an operator's preview does)."""
        env = {**os.environ, "TORJAIL_LAB_HOST": self.name, "TORJAIL_GELI_PASSPHRASE": passphrase}
        env["TORJAIL_LAB_SETTINGS"] = json.dumps(settings or {})
        try:
            return subprocess.run(
                [PYINFRA, "lab/inventory.py", deploy_file, *(["-y"] if yes else []), *args], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired as expired:
            output = expired.output or b""
            output = output.decode(errors="replace") if isinstance(output, bytes) else output
            raise AssertionError(
                f"pyinfra {deploy_file} on {self.name} still running after {timeout} s; its output so far:\n"
                f"{output[-6000:]}"
            ) from None

    def reboot(self):
        host.reboot(self.name, log=lambda text: None)


def changes(output):
    """How many operations pyinfra reports as changed (Success) in its results table; 0 for "-"."""
    match = GRAND_TOTAL.search(output)
    if match is None:
        raise AssertionError(f"no results table in pyinfra's output:\n{output[-3000:]}")
    success = match.group(2)
    return 0 if success == "-" else int(success)


@contextlib.contextmanager
def relay_host(name, index):
    """A fresh lab host for a relay, destroyed afterwards (TORJAIL_LAB_KEEP=1 keeps it)."""
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    host.destroy(name, log=lambda text: None)
    host.up(name, index, log=lambda text: None)
    try:
        yield Relay(name, index)
    finally:
        if not os.environ.get("TORJAIL_LAB_KEEP"):
            host.destroy(name, log=lambda text: None)


def host_checks(relay, jail, tmp_path, *modules, name):
    """One run of tests/host (or of `modules`) against the lab host `name` for one of its jails, with the relay's
    settings (relay.settings) as host data: the names of the failing checks, without their parameters."""
    report = tmp_path / f"{jail}.xml"
    env = {**os.environ, "TORJAIL_LAB_HOST": name, "TORJAIL_GELI_PASSPHRASE": PASSPHRASE,
           "TORJAIL_LAB_SETTINGS": json.dumps(relay.settings)}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(modules or ["tests/host"]),
            f"--hosts=ssh://{name}", f"--ssh-config={paths.ssh_config_path(name)}", "--inventory=lab/inventory.py",
            f"--jail={jail}", f"--junitxml={report}"]
    result = subprocess.run(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=SUITE_TIMEOUT)
    assert report.exists(), (result.stdout + result.stderr)[-6000:]
    cases = list(ET.parse(report).getroot().iter("testcase"))
    ran = [case for case in cases if case.find("skipped") is None]
    assert ran, (result.stdout + result.stderr)[-6000:]
    return [case.get("name").split("[")[0] for case in cases
            if case.find("failure") is not None or case.find("error") is not None]
