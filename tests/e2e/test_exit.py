"""End to end on a lab host: an exit relay, whose jail resolves through its own local-unbound.

An exit resolves every destination its users ask for; torjail gives its jail FreeBSD base's local-unbound
(templates/local-unbound.conf.j2 at /var/unbound/unbound.conf, local_unbound_enable in the jail's rc.conf) and points
the jail's resolv.conf at it. The lab host has FreeBSD's local-unbound too: Debian's real unbound daemon behind
FreeBSD's names, FreeBSD's rc.d/local_unbound, the unbound user at uid 59. The lab has no internet, so the resolver
is shown answering what it answers itself (the built-in `localhost.` zone, no lab data added), resolving a public name
from the root servers (never through the host's resolver; the lookup stays pending, as there is no internet), and
refusing a client its access-control does not allow. A second deploy changes nothing, and the host checks of
tests/host (the exit's own resolver among them) pass against it.

The tests run in file order on one lab host: each step starts from the state the previous one left.
"""

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab import paths
from relay import PASSPHRASE, changes, relay_host

pytestmark = pytest.mark.lab

NAME = os.environ.get("TORJAIL_LAB_EXIT_HOST", "exit1")
INDEX = int(os.environ.get("TORJAIL_LAB_EXIT_INDEX", "81"))
EXIT = {"exit_relay": True, "exit_notice": True}
ROOT = Path(__file__).resolve().parents[2]
JAIL, JAIL_ROOT, JAIL_IP = "tor", "/var/jails/tor", "10.0.0.1"
SUITE_TIMEOUT = 300
# The IPv4 addresses of the root servers (unbound's built-in hints; b.root-servers.net's old and new address).
ROOT_SERVERS = {"198.41.0.4", "199.9.14.201", "170.247.170.2", "192.33.4.12", "199.7.91.13", "192.203.230.10",
                "192.5.5.241", "192.112.36.4", "198.97.190.53", "192.36.148.17", "192.58.128.30", "193.0.14.129",
                "199.7.83.42", "202.12.27.33"}


@pytest.fixture(scope="module")
def relay():
    with relay_host(NAME, INDEX) as relay:
        yield relay


def drill(relay, arguments, timeout=120):
    """drill(1) in the jail (FreeBSD's base has it): (seconds taken, its output)."""
    started = time.monotonic()
    status, output, err = relay.run(f"jexec {JAIL} drill {arguments}", timeout=timeout)
    return time.monotonic() - started, output + err


def test_an_exit_relay_is_deployed(relay):
    result = relay.pyinfra("deploy.py", settings=EXIT)
    assert result.returncode == 0, result.stdout[-6000:]
    assert changes(result.stdout) > 20
    assert "name=tor" in relay.must("jls -n name")


def test_the_jail_resolv_conf_points_at_its_own_resolver(relay):
    """tor in the jail resolves through the jail's local-unbound, never the host's resolvers."""
    conf = relay.must(f"cat {JAIL_ROOT}/etc/resolv.conf")
    nameservers = [line.split()[1] for line in conf.splitlines() if line.startswith("nameserver")]
    assert nameservers == [JAIL_IP], conf
    host_conf = relay.must("cat /etc/resolv.conf")
    assert f"nameserver {JAIL_IP}" not in host_conf


def test_local_unbound_runs_in_the_jail_with_the_config_torjail_wrote(relay):
    status = relay.must(f"service -j {JAIL} local_unbound status")
    assert status.startswith("local_unbound is running as pid "), status
    control = relay.must(f"jexec {JAIL} local-unbound-control -c /var/unbound/unbound.conf status")
    assert "is running" in control
    assert relay.must(f"jexec {JAIL} local-unbound-checkconf").startswith("unbound-checkconf: no errors in "
                                                                          "/var/unbound/unbound.conf")
    # The daemon reads torjail's file (rc.d/local_unbound passes -c local_unbound_config) and drops to unbound.
    processes = relay.must(f"ps -J {JAIL} -o user,command")
    daemon = [line for line in processes.splitlines() if "/usr/sbin/local-unbound" in line]
    assert daemon and daemon[0].split()[0] == "unbound", processes
    assert "-c /var/unbound/unbound.conf" in daemon[0]
    # setup did not run: torjail's configuration is the one in place (local-unbound-setup would have replaced it).
    conf = relay.must(f"cat {JAIL_ROOT}/var/unbound/unbound.conf")
    assert conf.startswith("# Managed by torjail"), conf[:200]
    assert relay.must(f"ls {JAIL_ROOT}/var/unbound").split() == ["root.key", "unbound.conf"]


def test_local_unbound_listens_on_the_jail_address_only(relay):
    listening = relay.must(f"sockstat -4 -l -j {JAIL}")
    lines = [line for line in listening.splitlines() if ":53 " in line]
    assert {line.split()[4] for line in lines} == {"tcp4", "udp4"}, listening
    assert {line.split()[5] for line in lines} == {f"{JAIL_IP}:53"}, listening


def test_the_resolver_answers_the_jail(relay):
    """localhost. comes from unbound's built-in local zone: a real answer of the real daemon, no lab data."""
    seconds, output = drill(relay, f"@{JAIL_IP} localhost A")
    assert "rcode: NOERROR" in output and "127.0.0.1" in output.split("ANSWER SECTION:")[1], output


def test_a_public_name_is_resolved_from_the_root_servers_not_the_hosts_resolver(relay):
    """exit_resolvers = []: local-unbound recurses itself, from the root servers; the host's resolver (the lab host's
    /etc/resolv.conf nameserver) is never asked. The lab has no internet, so the lookup stays pending: drill gives up
    after 15 s, and unbound answers SERVFAIL only once a round of the 13 unreachable roots has failed (seen after
    56 to 227 s), so this waits for neither; it reads unbound's own pending requests and infrastructure cache."""
    taken, output = drill(relay, f"@{JAIL_IP} www.torproject.org A")
    assert "rcode: SERVFAIL" in output or "Could not send or receive, because of network error" in output, output
    control = f"jexec {JAIL} local-unbound-control -c /var/unbound/unbound.conf"
    if "rcode: SERVFAIL" not in output:
        assert "www.torproject.org." in relay.must(f"{control} dump_requestlist")
    asked = {line.split()[0] for line in relay.must(f"{control} dump_infra").splitlines() if line.strip()}
    host_resolvers = {line.split()[1] for line in relay.must("cat /etc/resolv.conf").splitlines()
                      if line.startswith("nameserver")}
    assert asked and asked <= ROOT_SERVERS, sorted(asked - ROOT_SERVERS)
    assert not asked & host_resolvers


def test_the_resolver_refuses_other_clients(relay):
    """access-control allows the jail address alone: a query from the host's public address is refused."""
    output = relay.must(f"drill -I {paths.address(INDEX)} @{JAIL_IP} localhost A")
    assert "rcode: REFUSED" in output, output


def test_tor_runs_in_the_jail(relay):
    listening = relay.must(f"sockstat -4 -l -j {JAIL}")
    assert f"{JAIL_IP}:9001" in listening and f"{JAIL_IP}:9030" in listening, listening
    assert relay.must(f"service -j {JAIL} tor status").startswith("tor is running as pid ")


def test_second_deploy_changes_nothing(relay):
    result = relay.pyinfra("deploy.py", settings=EXIT)
    assert result.returncode == 0, result.stdout[-6000:]
    assert changes(result.stdout) == 0, result.stdout[-6000:]
    assert relay.must(f"service -j {JAIL} local_unbound status").startswith("local_unbound is running")


def test_host_checks_pass_on_the_exit(relay, tmp_path):
    """tests/host, as `make verify` runs it, against the exit (its settings from the same inventory): every check
    passes, the exit's own resolver among them."""
    report = tmp_path / "suite.xml"
    env = {**os.environ, "TORJAIL_LAB_HOST": NAME, "TORJAIL_GELI_PASSPHRASE": PASSPHRASE,
           "TORJAIL_LAB_SETTINGS": json.dumps(EXIT)}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/host", f"--hosts=ssh://{NAME}",
            f"--ssh-config={paths.ssh_config_path(NAME)}", "--inventory=lab/inventory.py", f"--junitxml={report}"]
    result = subprocess.run(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=SUITE_TIMEOUT)
    output = (result.stdout + result.stderr)[-6000:]
    assert report.exists(), output
    cases = list(ET.parse(report).getroot().iter("testcase"))
    failing = [case.get("name") for case in cases if case.find("failure") is not None or case.find("error") is not None]
    assert not failing and result.returncode == 0, output
    ran = {case.get("name").split("[")[0] for case in cases if case.find("skipped") is None}
    assert "test_exit_jail_runs_its_own_resolver" in ran, sorted(ran)


CONTROL = f"jexec {JAIL} local-unbound-control -c /var/unbound/unbound.conf"


def resolver_pid(relay):
    status = relay.must(f"service -j {JAIL} local_unbound status")
    return status.split("pid ")[1].rstrip(".\n")


def test_a_new_forwarder_is_reloaded_into_the_running_resolver(relay):
    """exit_resolvers changes the configuration: the deploy has the running local-unbound reread it (rc.d's reload
    checks it with local-unbound-checkconf as the unbound user first), the same daemon, now forwarding; and back."""
    pid = resolver_pid(relay)
    forwarder = paths.gateway(INDEX)
    result = relay.pyinfra("deploy.py", settings={**EXIT, "exit_resolvers": [forwarder]})
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Reload local-unbound (configuration changed)" in result.stdout
    assert resolver_pid(relay) == pid
    assert forwarder in relay.must(f"{CONTROL} list_forwards")
    result = relay.pyinfra("deploy.py", settings=EXIT)
    assert result.returncode == 0, result.stdout[-6000:]
    assert resolver_pid(relay) == pid
    assert forwarder not in relay.must(f"{CONTROL} list_forwards")


def test_after_reboot_and_unlock_the_jail_starts_its_resolver_before_tor(relay):
    """The image is locked after a reboot; unlock starts the jail, whose rc starts local_unbound (enabled in the
    jail's rc.conf, BEFORE: NETWORKING) ahead of tor, from the configuration and trust anchor already there."""
    relay.reboot()
    result = relay.pyinfra("unlock.py", settings=EXIT)
    assert result.returncode == 0, result.stdout[-6000:]
    assert relay.must(f"service -j {JAIL} local_unbound status").startswith("local_unbound is running as pid ")
    assert relay.must(f"service -j {JAIL} tor status").startswith("tor is running as pid ")
    console = relay.must(f"cat /var/log/jail_{JAIL}_console.log")
    last_boot = console[console.rindex("Starting local_unbound."):]
    assert "Waiting for nameserver to start... good" in last_boot and "Starting tor." in last_boot, console[-3000:]
    assert "Performing initial setup." not in last_boot
    taken, output = drill(relay, f"@{JAIL_IP} localhost A")
    assert "rcode: NOERROR" in output, output
