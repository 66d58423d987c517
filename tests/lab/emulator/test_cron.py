"""cron on the session lab host: started at boot as FreeBSD's default rc.conf has it, running the system
crontabs of /etc/cron.d; and the firewall's cron job, as the deploy installs it, letting an address out of
<bruteforce> once sshd_block_seconds have passed (and not before)."""

import time

import pytest

from torjail.render import render_file
from torjail.settings import build_settings

pytestmark = pytest.mark.lab

BLOCK_SECONDS = 60  # the shortest sshd_block_seconds the settings take
ADDRESS = "192.0.2.99"


def test_cron_runs_from_boot(lab_run):
    status, output, err = lab_run("sysrc -n cron_enable; service cron status")
    assert status == 0, err
    assert output.splitlines()[0] == "YES" and output.splitlines()[1].startswith("cron is running as pid ")


def test_service_stop_ends_the_daemon_the_boot_started(lab_run):
    """A daemon of the boot dies on its rc.d script's SIGTERM (init must not hand its ignored signals down)."""
    status, output, err = lab_run("cat /var/run/cron.pid; service cron stop >/dev/null; "
                                  "kill -0 $(cat /var/run/cron.pid) 2>/dev/null && echo alive; "
                                  "service cron start >/dev/null; service cron status", timeout=90)
    assert status == 0, err
    lines = output.splitlines()
    assert "alive" not in lines, f"cron (pid {lines[0]}) outlived service cron stop"
    assert lines[-1].startswith("cron is running as pid ")


def test_the_bruteforce_expiry_job_lets_an_address_out_after_sshd_block_seconds(lab_run):
    settings = build_settings("lab", {"identity": "on-relay", "relay_nickname": "Lab", "relay_contact": "ops@example.org",
                                      "public_ipv4": "198.51.100.7", "sshd_block_seconds": BLOCK_SECONDS})
    cron_file = render_file(settings, "bruteforce.cron.j2")
    status, _out, err = lab_run("kldload -n pf && pfctl -q -t bruteforce -T add " + ADDRESS, timeout=30)
    assert status == 0, err
    added = time.monotonic()
    # what cron must skip: a file whose name starts with a dot, a line naming no such user
    status, _out, err = lab_run("mkdir -p /etc/cron.d && cat > /etc/cron.d/torjail-bruteforce && "
                                "echo '* * * * * root touch /tmp/dotfile-ran' > /etc/cron.d/.hidden && "
                                "echo '* * * * * nosuchuser touch /tmp/nouser-ran' > /etc/cron.d/lab-nouser && "
                                "echo '* * * * * root touch /tmp/cron-ran' > /etc/cron.d/lab-ran",
                                input=cron_file, timeout=30)
    assert status == 0, err
    shown = ADDRESS
    while ADDRESS in shown and time.monotonic() < added + 2 * BLOCK_SECONDS + 20:
        time.sleep(5)
        shown = lab_run("pfctl -t bruteforce -T show", timeout=30)[1]
    gone_after = time.monotonic() - added
    _status, traces, _err = lab_run("ls /tmp/cron-ran /tmp/dotfile-ran /tmp/nouser-ran 2>/dev/null; "
                                    "rm -f /etc/cron.d/.hidden /etc/cron.d/lab-nouser /etc/cron.d/lab-ran "
                                    "/etc/cron.d/torjail-bruteforce /tmp/*-ran", timeout=30)
    assert ADDRESS not in shown, f"{ADDRESS} still in <bruteforce> after {gone_after:.0f} s"
    assert gone_after > BLOCK_SECONDS, f"{ADDRESS} let out after {gone_after:.0f} s"
    assert traces.split() == ["/tmp/cron-ran"]
