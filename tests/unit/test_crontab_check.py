"""The crontab checker: the <bruteforce> expiry job as rendered passes, and lines cron would skip are named."""

import pytest

from torjail.checks.crontab import check_crontab
from torjail.render import render_file
from torjail.settings import build_settings

BASE = {"identity": "on-relay", "relay_nickname": "CronRelay", "relay_contact": "ops@example.org", "public_ipv4": "198.51.100.7"}


def test_the_rendered_expiry_job_passes():
    assert check_crontab(render_file(build_settings("cron", BASE), "bruteforce.cron.j2")) == []


def test_crontab_forms_cron_reads_pass():
    assert check_crontab("MAILTO=\"\"\n0,30 1-5 */2 1-12/3 0-7 root true\n@hourly operator /usr/libexec/atrun\n") == []


@pytest.mark.parametrize("line, problem", [
    ("* * * * root pfctl -t bruteforce -T expire 60", "line 1: 'root' is not a crontab time field"),
    ("* * * * * root", "line 1: expected five time fields, a user and a command"),
    ("60 * * * * root true", "line 1: '60' is outside 0-59"),
    ("* 24 * * * root true", "line 1: '24' is outside 0-23"),
    ("*/x * * * * root true", "line 1: '*/x' is not a crontab time field"),
    ("1-5/ * * * * root true", "line 1: '1-5/' has a step that is not a number"),
    ("* * 0 * * root true", "line 1: '0' is outside 1-31"),
    ("@hourly root", "line 1: expected @hourly, a user and a command"),
    ("* * * * * Root! true", "line 1: 'Root!' is not a user name"),
    ("a * * * * root true", "line 1: 'a' is not a crontab time field"),
])
def test_lines_cron_cannot_read_are_named(line, problem):
    assert check_crontab(f"SHELL=/bin/sh\n{line}\n".replace("line 1", "line 2")) == [problem.replace("line 1", "line 2")]
