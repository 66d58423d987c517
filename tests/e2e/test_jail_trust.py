"""End to end on a lab host: root in the jail does not become root on the host through the deploy.

Root in the jail (a compromised tor, say) plants what would turn a careless host against itself: the jail's
/etc/rc.conf as a symbolic link to /etc/ssh/sshd_config (absolute: followed by the host, it names the host's own
file) and a /usr/local/bin/tor that leaves a mark in /tmp wherever it runs. A deploy that rewrites both files and
checks the new torrc with tor then runs, first with the jail running (every write and tor itself go through jexec,
so the link and the mark stay inside the jail), then with the jail stopped (the host's own shell writes, and
refuses the link). The host's sshd_config and /tmp stay untouched throughout.

The tests run in file order on one lab host: each step starts from the state the previous one left.
"""

import pytest

from relay import relay_host

pytestmark = pytest.mark.lab

ROOT = "/var/jails/tor"
MARK = "/tmp/torjail-trap-fired"
TRAP = f"#!/bin/sh\ntouch {MARK}\nexec /usr/local/bin/tor.real \"$@\"\n"
CHANGE = {"bandwidth_rate": "3 MBytes"}  # a new torrc: the deploy checks it with tor and reloads tor


@pytest.fixture(scope="module")
def relay():
    with relay_host("trust1", 57) as relay:
        yield relay


def host_sshd_config(relay):
    return relay.must("sha256 -q /etc/ssh/sshd_config")


def plant(relay):
    """What root in the jail can do: a link for the host to follow, and a tor that marks where it runs."""
    relay.must("jexec tor /bin/sh -c 'ln -sf /etc/ssh/sshd_config /etc/rc.conf && "
               "{ [ -e /usr/local/bin/tor.real ] || mv /usr/local/bin/tor /usr/local/bin/tor.real; } && "
               "cat > /usr/local/bin/tor && chmod 755 /usr/local/bin/tor'", input=TRAP)


def test_a_relay_is_deployed(relay):
    result = relay.pyinfra("deploy.py")
    assert result.returncode == 0, result.stdout[-5000:]
    relay.sshd_config = host_sshd_config(relay)


def test_with_the_jail_running_the_planted_link_and_tor_stay_inside_the_jail(relay):
    plant(relay)
    result = relay.pyinfra("deploy.py", settings=CHANGE)
    assert result.returncode == 0, result.stdout[-5000:]
    assert host_sshd_config(relay) == relay.sshd_config
    assert relay.must(f"ls {MARK} 2>/dev/null; true") == "", "the jail's tor ran on the host"
    assert relay.must(f"ls {ROOT}{MARK}").strip() == f"{ROOT}{MARK}"  # it ran, inside the jail
    assert "RelayBandwidthRate 3 MBytes" in relay.must(f"cat {ROOT}/usr/local/etc/tor/torrc")


def test_with_the_jail_stopped_the_host_refuses_to_write_through_the_link(relay):
    relay.must(f"rm -f {ROOT}{MARK}")
    plant(relay)
    relay.must("jail -r tor")
    result = relay.pyinfra("deploy.py")
    assert result.returncode != 0
    assert "is a symbolic link in the jail root" in result.stdout, result.stdout[-3000:]
    assert host_sshd_config(relay) == relay.sshd_config
    assert relay.must(f"ls {MARK} {ROOT}{MARK} 2>/dev/null; true") == "", "the jail's tor ran outside the jail"
