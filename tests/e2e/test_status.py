"""End to end on two lab hosts deployed from one inventory, with the real tor: `python -m torjail status` shows the
relay that runs as unlocked with jail and tor up and the accounting its tor reports, and the relay rebooted since
as locked with "run unlock.py"; each running relay's chart is a PNG whose plotted numbers are tor's; --json parses.

The tests run in file order on the same two lab hosts: each step starts from the state the previous one left.
"""

import contextlib
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from relay import PASSPHRASE, PYINFRA, ROOT, relay_host
from torjail.status import tor_time

pytestmark = pytest.mark.lab

HOSTS = (("stat1", 55), ("stat2", 56))
DATA = "/var/jails/tor/var/db/tor"
GETINFO = ("accounting/bytes", "accounting/bytes-left", "accounting/interval-start", "accounting/interval-end",
           "version")
CONTROL = (f"cookie=$(od -An -v -t x1 {DATA}/control_auth_cookie | tr -d ' \\n') && "
           f"printf 'AUTHENTICATE %s\\r\\nGETINFO {' '.join(GETINFO)}\\r\\nQUIT\\r\\n' "
           f"\"$cookie\" | nc -w 10 -U {DATA}/control | tr -d '\\r'")
ENV = {"TORJAIL_LAB_HOST": ",".join(name for name, _ in HOSTS)}


@pytest.fixture(scope="module")
def fleet():
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(relay_host(name, index)) for name, index in HOSTS]


def tor_says(relay):
    """{name: value} of the GETINFO answers of the relay's running tor, asked without torjail."""
    reply = relay.run(CONTROL)[1]
    return dict(line[4:].split("=", 1) for line in reply.splitlines() if line[4:].split("=")[0] in GETINFO)


def used(answers):
    read, written = (int(word) for word in answers["accounting/bytes"].split())
    return read + written  # the lab inventory keeps accounting_rule "sum"


def status(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "torjail", "status", "lab/inventory.py", "--charts",
                           str(tmp_path / "charts"), *args], cwd=ROOT, env={**os.environ, **ENV},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


def test_deploy_both_and_reboot_one(fleet):
    env = {**os.environ, **ENV, "TORJAIL_GELI_PASSPHRASE": PASSPHRASE}
    result = subprocess.run([PYINFRA, "lab/inventory.py", "deploy.py", "-y"], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=1200)
    assert result.returncode == 0, result.stdout[-5000:]
    fleet[1].reboot()
    assert "md10.eli" not in fleet[1].run("geli list")[1]  # the image is locked; the swap has its one-time key


def test_the_table_shows_one_running_and_one_locked_relay(fleet, tmp_path):
    before = tor_says(fleet[0])
    result = status(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr  # the locked relay needs the operator
    lines = result.stdout.splitlines()
    header = lines[0].split()
    assert header[:6] == ["host", "reachable", "image", "jail", "tor", "version"]
    running = next(line for line in lines if line.startswith("stat1 "))
    locked = next(line for line in lines if line.startswith("stat2 "))
    assert running.split()[1:6] == ["yes", "unlocked", "up", "up", before["version"]]
    assert "awake" in running and "enabled  encrypted" in running and running.endswith("  ok")
    assert locked.split()[1:6] == ["yes", "locked", "down", "down", "?"]
    assert locked.endswith("locked: run unlock.py")
    assert " 0 B" not in locked, "the locked relay's unknown traffic must not show as zero"
    assert os.path.exists(tmp_path / "charts" / "stat1.png") and not os.path.exists(tmp_path / "charts" / "stat2.png")


def test_the_chart_is_a_png_of_what_tor_reported(fleet, tmp_path):
    before = tor_says(fleet[0])
    result = status(tmp_path, "--json")
    after = tor_says(fleet[0])
    reported = {row["host"]: row for row in json.loads(result.stdout)}["stat1"]["accounting"]
    path = tmp_path / "charts" / "stat1.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        plotted = json.loads(image.text["torjail"])
    assert plotted["used"] == reported["bytes"]["read"] + reported["bytes"]["written"]
    assert used(before) <= plotted["used"] <= used(after), (before, plotted, after)
    assert plotted["allowance"] == plotted["used"] + reported["bytes_left"]["read"]
    assert before["accounting/interval-start"] == reported["interval_start"] == after["accounting/interval-start"]
    assert plotted["start"] == tor_time(after["accounting/interval-start"])
    assert plotted["end"] == tor_time(after["accounting/interval-end"])
    assert plotted["even_use"] == [[plotted["start"], 0], [plotted["end"], plotted["allowance"]]]


def test_json_parses_with_the_same_rows(fleet, tmp_path):
    result = status(tmp_path, "--json")
    rows = {row["host"]: row for row in json.loads(result.stdout)}
    assert rows["stat1"]["image"] == "unlocked" and rows["stat1"]["tor"] is True and rows["stat1"]["next"] == []
    assert rows["stat1"]["accounting"]["enabled"] is True and rows["stat1"]["accounting"]["bytes"]["read"] > 0
    assert rows["stat2"]["image"] == "locked" and rows["stat2"]["next"] == ["locked: run unlock.py"]
    assert rows["stat2"]["accounting"]["bytes"] is None and rows["stat2"]["version"] is None
    assert rows["stat2"]["chart"] is None and rows["stat1"]["chart"].endswith("stat1.png")
