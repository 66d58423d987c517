"""End to end on one lab host running a relay jail and an onion-service jail, through the real pyinfra CLI over
real SSH: the onion service's tor runs in its own jail on its own encrypted image and makes the service's keys and
hostname there, pf gives it nothing on the public address, and it keeps its onion address across a reboot, one
unlock.py run and lock.py. backup.py backs its keys up (encrypted, nothing of them in pyinfra's output), and after
the loss of its image, a deploy with TORJAIL_RESTORE brings it back on a new image with the same onion address.

What is not shown: a client reaching the service through the Tor network (the lab has no Tor network), and a
service package (the lab's package repository carries tor only). The service is stood in for by a listener
started in the jail on the address tor's own configuration forwards the onion port to, as read from the running
tor over its control socket.

The tests run in file order on one lab host: each step starts from the state the previous one left.
"""

import base64
import os
import re
import shutil
import tempfile

import pytest
from pyrage import decrypt, x25519

from relay import PASSPHRASE, changes, host_checks, relay_host
from torjail import backups

pytestmark = pytest.mark.lab

NAME, INDEX = "onion1", 63
JAILS = [{"kind": "relay", "jail_name": "tor", "jail_ip": "10.0.0.1", "md_unit": 10,
          "relay_nickname": "TorjailOnionA"},
         {"kind": "onion-service", "jail_name": "web", "jail_ip": "10.0.0.3", "md_unit": 12, "onion_ports": [80]}]
HOSTNAME = "/var/jails/web/var/db/tor/onion/hostname"
KEY_HEADER = 32  # tor's key files: "== ed25519v1-secret: type0 ==" and three NULs, then the key
ONION = re.compile(r"[a-z2-7]{56}\.onion")
DATA = "/var/jails/web/var/db/tor"  # the jail's tor data directory, as the host sees it
CONTROL = (f"cookie=$(od -An -v -t x1 {DATA}/control_auth_cookie | tr -d ' \\n') && "
           f"printf 'AUTHENTICATE %s\\r\\nGETCONF HiddenServicePort\\r\\nQUIT\\r\\n' \"$cookie\" | "
           f"nc -w 10 -U {DATA}/control | tr -d '\\r'")


@pytest.fixture(scope="module")
def relay():
    secrets = tempfile.mkdtemp(prefix="torjail-onion-secrets-")
    try:
        with relay_host(NAME, INDEX) as relay:
            relay.age_key = x25519.Identity.generate()
            relay.secrets = os.path.join(secrets, "torjail")
            relay.settings = {"relay_nickname": None, "jails": JAILS, "secrets_dir": relay.secrets,
                              "age_recipient": str(relay.age_key.to_public())}
            yield relay
    finally:
        shutil.rmtree(secrets)


def onion_address(relay):
    """The service's hostname, once its tor has written it (tor makes the keys at its first start)."""
    status, output, _ = relay.run(f"i=0; while [ ! -s {HOSTNAME} ] && [ $i -lt 30 ]; do sleep 1; i=$((i+1)); done; "
                                  f"cat {HOSTNAME}")
    assert status == 0, f"no {HOSTNAME} after 30 s"
    return output.strip()


def test_the_onion_service_runs_its_own_tor_on_its_own_image(relay):
    result = relay.deployed("deploy.py")
    assert PASSPHRASE not in result.stdout
    assert sorted(relay.must("jls name").split()) == ["tor", "web"]
    assert relay.must("service -j web tor status").startswith("tor is running as pid ")
    mounted = relay.must("mount -p").splitlines()
    assert any(line.split()[:2] == ["/dev/md12.eli", "/var/jails/web"] for line in mounted), mounted
    assert ONION.fullmatch(onion_address(relay))
    assert relay.must("stat -f %Sp /var/jails/web/var/db/tor/onion").strip() == "drwx------"
    again = relay.deployed("deploy.py")
    assert changes(again.stdout) == 0, again.stdout[-6000:]


def test_nothing_of_the_onion_service_is_on_the_public_address(relay):
    rules = relay.must("pfctl -s nat")
    assert "nat on vtnet0 inet from 10.0.0.3 to any -> " in rules, rules
    assert "10.0.0.3" not in "\n".join(line for line in rules.splitlines() if line.startswith("rdr")), rules
    assert "10.0.0.3" not in "\n".join(line for line in relay.must("pfctl -s rules").splitlines()
                                       if line.startswith("pass")), "a pass rule names the onion service's jail"
    assert "10.0.0.3:" not in relay.must("sockstat -4 -l"), "the onion service's tor listens on something"


def test_the_onion_port_reaches_the_service_on_the_jail_address(relay):
    """tor forwards the onion port where its own configuration says: a listener there (the stand-in service)
    answers a connection made to that very target."""
    reply = relay.must(CONTROL)
    target = re.search(r"HiddenServicePort=80 (\S+)", reply)
    assert target and target.group(1) == "10.0.0.3:80", reply
    address, port = target.group(1).split(":")
    relay.must(f"jexec web daemon -f sh -c 'echo served-in-the-jail | nc -l -w 10 {address} {port}'")
    answer = relay.must(f"sleep 1; jexec web nc -w 5 {address} {port} < /dev/null")
    assert answer.strip() == "served-in-the-jail"


@pytest.mark.parametrize("jail", ["tor", "web"])
def test_the_host_checks_pass_for_the_relay_and_the_onion_service(relay, jail, tmp_path):
    assert host_checks(relay, jail, tmp_path, name=NAME) == []


def test_the_host_checks_of_the_onion_service_fail_when_its_keys_are_readable(relay, tmp_path):
    relay.must("chmod 0644 /var/jails/web/var/db/tor/onion/hs_ed25519_secret_key")
    try:
        failing = host_checks(relay, "web", tmp_path, "tests/host/test_permissions.py", name=NAME)
        assert failing == ["test_key_files_mode"], failing
    finally:
        relay.must("chmod 0600 /var/jails/web/var/db/tor/onion/hs_ed25519_secret_key")


def test_the_onion_address_survives_reboot_unlock_and_lock(relay):
    before = onion_address(relay)
    relay.reboot()
    assert relay.must("jls name").split() == []
    assert "md12.eli" not in relay.must("geli status")
    unlocked = relay.deployed("unlock.py")
    assert "Unlock /var/jails/web.img" in unlocked.stdout
    assert sorted(relay.must("jls name").split()) == ["tor", "web"]
    assert onion_address(relay) == before
    locked = relay.deployed("lock.py")
    assert "Lock md12.eli" in locked.stdout
    assert "md12" not in relay.must("mdconfig -l").split()
    relay.deployed("unlock.py")
    assert onion_address(relay) == before


def test_backup_holds_the_onion_services_keys_and_address_and_prints_no_key(relay, monkeypatch):
    monkeypatch.setenv("TORJAIL_AGE_IDENTITY", str(relay.age_key))
    result = relay.deployed("backup.py", "-vvv")
    folder = os.path.join(relay.secrets, NAME, "jails", "web")
    (name,) = [name for name in os.listdir(folder) if name.startswith("backup-")]
    relay.backup = os.path.join(folder, name)
    with open(relay.backup, "rb") as handle:
        backup = backups.unpack(decrypt(handle.read(), [relay.age_key]), relay.backup)
    assert (backup.kind, backup.host_name, backup.onion_address) == ("onion-service", f"{NAME}/web",
                                                                     onion_address(relay))
    secret = relay.must("base64 -w0 /var/jails/web/var/db/tor/onion/hs_ed25519_secret_key").strip()
    assert base64.b64encode(backup.keys["hs_ed25519_secret_key"]).decode() == secret
    assert backup.geli_metadata.startswith(b"GEOM::ELI")
    assert backup.onion_address in result.stdout
    for name, data in backup.keys.items():
        if name == "hostname":  # the address, which is public
            continue
        key = data[KEY_HEADER:]  # tor's 32-byte header is the same in every key file: the key's own bytes follow
        assert len(key) >= 32, name
        for shown in (base64.b64encode(data).decode(), base64.b64encode(key).decode(), key.hex()):
            for start in range(0, len(shown) - 24, 24):
                assert shown[start:start + 24] not in result.stdout, f"part of {name} in pyinfra's output"
    relay.address_backed_up = backup.onion_address


def test_after_the_loss_of_its_image_a_restore_brings_the_service_back_with_its_address(relay, monkeypatch):
    """The service's image is lost (the jail stopped, which unmounts its root, its image detached and deleted);
    the relay's is kept. The deploy refuses to make a new vault where torjail made one, until the operator
    removes its record and the jail's configuration by hand, as it says; then a deploy with the service's backup
    makes it a new image and vault, and its tor comes up with the old address."""
    monkeypatch.setenv("TORJAIL_AGE_IDENTITY", str(relay.age_key))
    relay.must("jail -r web && geli detach md12.eli && mdconfig -d -u 12 && rm /var/jails/web.img")
    monkeypatch.setenv("TORJAIL_RESTORE", relay.backup)
    refused = relay.pyinfra("deploy.py", settings=relay.settings)
    record = "/var/db/torjail/images/var/jails/web.img"
    assert refused.returncode != 0 and f"the encrypted image is missing: there is no /var/jails/web.img" in \
        refused.stdout, refused.stdout[-3000:]
    relay.must(f"rm {record} /etc/jail.conf.d/web.conf")
    result = relay.deployed("deploy.py")
    assert "Key files of the backup of" in result.stdout and PASSPHRASE not in result.stdout
    assert sorted(relay.must("jls name").split()) == ["tor", "web"]
    assert onion_address(relay) == relay.address_backed_up
    again = relay.deployed("deploy.py", "-v")
    assert changes(again.stdout) == 0, again.stdout[-6000:]
    assert "already holds the keys of the backup" in again.stdout
