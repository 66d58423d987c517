"""End to end on one lab host running two relay jails and an onion-service jail, through the real pyinfra CLI over
real SSH: each tor runs in its own jail on its own encrypted image, pf redirects each relay's ports to its own
jail, the two relays list each other in MyFamily, a reboot locks every image, one unlock.py run (one passphrase)
opens them all, lock.py locks them all, and the host checks (tests/host, one run per jail) pass for each jail and
fail for the jail whose tor is stopped. test_onion_service.py shows the onion service itself.

The tests run in file order on one lab host: each step starts from the state the previous one left.
"""

import socket

import pytest
from pyrage import x25519

from relay import PASSPHRASE, changes, host_checks, relay_host

pytestmark = pytest.mark.lab

NAME, INDEX = "multi1", 62
JAILS = [{"kind": "relay", "jail_name": "tor", "jail_ip": "10.0.0.1", "md_unit": 10,
          "relay_nickname": "TorjailMultiA"},
         {"kind": "relay", "jail_name": "tor2", "jail_ip": "10.0.0.2", "md_unit": 11,
          "relay_nickname": "TorjailMultiB", "or_port": 9002, "dir_port": 0},
         {"kind": "onion-service", "jail_name": "web", "jail_ip": "10.0.0.3", "md_unit": 12, "onion_ports": [80]}]


@pytest.fixture(scope="module")
def relay():
    with relay_host(NAME, INDEX) as relay:
        relay.settings = {"relay_nickname": None, "jails": JAILS, "family": "labmulti",
                          "age_recipient": str(x25519.Identity.generate().to_public())}
        yield relay


def jails(relay):
    return sorted(relay.run("jls name")[1].split())


def torrc(relay, jail):
    return relay.must(f"cat /var/jails/{jail}/usr/local/etc/tor/torrc")


def fingerprint(relay, jail):
    return relay.must(f"cat /var/jails/{jail}/var/db/tor/fingerprint").split()[1]


def test_a_fresh_server_runs_each_relay_in_its_own_jail_on_its_own_image(relay):
    result = relay.deployed("deploy.py")
    assert PASSPHRASE not in result.stdout
    assert jails(relay) == ["tor", "tor2", "web"]
    listening = relay.must("sockstat -4 -l")
    assert "10.0.0.1:9001" in listening and "10.0.0.1:9030" in listening and "10.0.0.2:9002" in listening
    providers = relay.must("geli status")
    assert "md10.eli" in providers and "md11.eli" in providers and "md12.eli" in providers
    mounted = relay.must("mount -p").splitlines()
    assert any(line.split()[:2] == ["/dev/md10.eli", "/var/jails/tor"] for line in mounted), mounted
    assert any(line.split()[:2] == ["/dev/md11.eli", "/var/jails/tor2"] for line in mounted), mounted
    assert relay.must("sysrc -n ifconfig_lo1_alias1").strip() == "inet 10.0.0.2/32"


def test_pf_redirects_each_relays_port_to_its_own_jail(relay):
    """From this machine, the public address's 9001 reaches the first jail's tor and 9002 the second's (only
    tor2 listens on 9002, on its own address): each redirect goes to its own jail."""
    rules = relay.must("pfctl -s nat")
    assert "port = 9001 -> 10.0.0.1" in rules and "port = 9002 -> 10.0.0.2" in rules, rules
    for port in (9001, 9002):
        with socket.create_connection((relay.address, port), timeout=10):
            pass


def test_the_relays_of_a_host_list_each_other_in_myfamily_then_nothing_changes(relay):
    """Their fingerprints are read once each tor has run: the next deploy puts each in the other's MyFamily."""
    relay.deployed("deploy.py")
    first, second = fingerprint(relay, "tor"), fingerprint(relay, "tor2")
    assert f"MyFamily ${second}" in torrc(relay, "tor") and f"MyFamily ${first}" in torrc(relay, "tor2")
    again = relay.deployed("deploy.py")
    assert changes(again.stdout) == 0, again.stdout[-6000:]


def test_reboot_locks_every_image_and_one_unlock_opens_them_all(relay):
    relay.reboot()
    assert jails(relay) == []
    providers = relay.must("geli status")
    assert not any(f"md{unit}.eli" in providers for unit in (10, 11, 12)), providers
    result = relay.pyinfra("deploy.py", settings=relay.settings)
    assert result.returncode != 0 and "is locked" in result.stdout
    unlocked = relay.deployed("unlock.py")
    for image in ("tor", "tor2", "web"):
        assert f"Unlock /var/jails/{image}.img" in unlocked.stdout
    assert jails(relay) == ["tor", "tor2", "web"]
    assert "10.0.0.2:9002" in relay.must("sockstat -4 -l")
    again = relay.deployed("unlock.py")
    assert changes(again.stdout) == 0, again.stdout[-6000:]


@pytest.mark.parametrize("jail", ["tor", "tor2", "web"])
def test_the_host_checks_pass_for_each_jail(relay, jail, tmp_path):
    assert host_checks(relay, jail, tmp_path, name=NAME) == []


def test_the_host_checks_of_a_jail_whose_tor_stopped_fail_and_the_others_pass(relay, tmp_path):
    relay.must("service -j tor2 tor stop")
    try:
        failing = host_checks(relay, "tor2", tmp_path, "tests/host/test_tor.py", name=NAME)
        assert failing and any("running" in name or "listen" in name for name in failing), failing
        assert host_checks(relay, "tor", tmp_path, "tests/host/test_tor.py", name=NAME) == []
    finally:
        relay.must("service -j tor2 tor start")


def test_lock_locks_every_image_at_once(relay):
    result = relay.deployed("lock.py")
    assert changes(result.stdout) == 9, result.stdout[-6000:]
    assert jails(relay) == []
    devices = relay.must("mdconfig -l").split()
    assert not {"md10", "md11", "md12"} & set(devices), devices
    assert "/var/jails/tor" not in relay.must("mount -p")
