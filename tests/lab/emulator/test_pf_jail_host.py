"""pf keeps the jail off the host's own services, on a lab host of its own, with real TCP.

pf no longer skips lo0: the jail's address (10.0.0.1 on lo1) cannot open a connection to the host's sshd, on
the public address (over lo0) nor on the jail's own address (sshd listens on every address), nor to a host
service on the public address; the jail's own services still answer it, and the host's own connections over
lo0 (127.0.0.1 and its public address) still reach sshd. Connections come from inside the lab host's network
namespace, from the jail's address as a jailed process's socket is bound to it. Every listener is bounded; all
traffic stays inside the lab host.
"""

import os
import time

import pytest
from test_pf_enforcement import Listeners, _connect, _netns

pytestmark = pytest.mark.lab

LAB_NAME, LAB_INDEX = "jailhost", int(os.environ.get("TORJAIL_LAB_JAILHOST_INDEX", "20"))
JAIL_IP = "10.0.0.1"


@pytest.fixture(scope="module")
def guarded():
    """A lab host with the project's rendered pf.conf loaded, a host-only listener on the public address and a
    jail service on the jail's address."""
    from lab import host, paths
    from torjail.render import render_all
    from torjail.settings import build_settings

    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    host.destroy(LAB_NAME, log=lambda text: None)
    host.up(LAB_NAME, LAB_INDEX, log=lambda text: None)
    listeners = Listeners()
    try:
        address = paths.address(LAB_INDEX)
        settings = build_settings(LAB_NAME, {
            "identity": "on-relay", "relay_nickname": "LabRelay", "relay_contact": "ops@example.org",
            "public_ipv4": address, "ext_if": "vtnet0", "jail_ip": JAIL_IP, "admin_networks": ["198.18.0.0/15"]})
        pf_conf = next(f.content for f in render_all(settings) if f.kind == "pf.conf")
        assert "PFCONF" not in pf_conf
        status, _out, err = host.ssh(LAB_NAME, f"cat > /etc/pf.conf <<'PFCONF'\n{pf_conf}PFCONF\n"
                                     f"ifconfig lo1 create && ifconfig lo1 inet {JAIL_IP}/32 alias && kldload pf")
        assert status == 0, err
        inside = _netns(LAB_NAME)
        listeners.start(address, 8080, inside=inside)
        listeners.start(JAIL_IP, 5353, inside=inside)
        assert _connect(address, 22, source=JAIL_IP, inside=inside).startswith("SSH-2.0-"), "open before pf"
        # enabled from a detached process once this session has ended (see test_pf_enforcement)
        status, _out, err = host.ssh(LAB_NAME, "pfctl -f /etc/pf.conf && "
                                               "(sleep 1; pfctl -e) </dev/null >/dev/null 2>&1 &")
        assert status == 0, err
        time.sleep(2)
        yield {"address": address, "inside": inside}
    finally:
        listeners.stop()
        if not os.environ.get("TORJAIL_LAB_KEEP"):
            host.destroy(LAB_NAME, log=lambda text: None)


def test_the_jail_cannot_reach_the_hosts_sshd(guarded):
    for target in (guarded["address"], JAIL_IP):
        assert _connect(target, 22, source=JAIL_IP, inside=guarded["inside"]) == "timeout", target


def test_the_jail_cannot_reach_a_host_service_on_the_public_address(guarded):
    assert _connect(guarded["address"], 8080, source=JAIL_IP, inside=guarded["inside"]) == "timeout"


def test_the_host_loopback_still_reaches_sshd_and_its_services(guarded):
    inside, address = guarded["inside"], guarded["address"]
    assert _connect("127.0.0.1", 22, inside=inside).startswith("SSH-2.0-")
    assert _connect(address, 22, source=address, inside=inside).startswith("SSH-2.0-")
    assert _connect(address, 8080, source=address, inside=inside).startswith(f"{address}:8080 from {address}:")


def test_the_jail_still_reaches_its_own_services(guarded):
    answer = _connect(JAIL_IP, 5353, source=JAIL_IP, inside=guarded["inside"])
    assert answer.startswith(f"{JAIL_IP}:5353 from {JAIL_IP}:"), answer
