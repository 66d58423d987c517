"""End to end on a lab host with the real tor: an offline-master relay runs with no master secret key on it,
renew_keys.py replaces its certificate and tor (reloaded, not restarted) goes on with it, and a planted master
key makes the deploy stop, naming the file, before any change.

The tests run in file order on one lab host: each step starts from the state the previous one left.
"""

import base64
import os
import shutil
import tempfile

import pytest
from pyrage import x25519

from relay import changes, relay_host

pytestmark = pytest.mark.lab

KEYS = "/var/jails/tor/var/db/tor/keys"
TORRC = "/var/jails/tor/usr/local/etc/tor/torrc"
DATA = "/var/jails/tor/var/db/tor"
CONTROL = (f"cookie=$(od -An -v -t x1 {DATA}/control_auth_cookie | tr -d ' \\n') && "
           f"printf 'AUTHENTICATE %s\\r\\nGETCONF OfflineMasterKey\\r\\nGETINFO fingerprint\\r\\nQUIT\\r\\n' "
           f"\"$cookie\" | nc -w 10 -U {DATA}/control")


@pytest.fixture(scope="module")
def relay():
    secrets = tempfile.mkdtemp(prefix="torjail-identity-secrets-")
    age_key = x25519.Identity.generate()
    identity_file = os.path.join(secrets, "age-identity.txt")
    with open(os.open(identity_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
        handle.write(f"{age_key}\n")
    settings = {"identity": "offline-master", "age_recipient": str(age_key.to_public()),
                "secrets_dir": os.path.join(secrets, "torjail")}
    os.environ["TORJAIL_AGE_IDENTITY_FILE"] = identity_file
    with relay_host("identity", 45) as relay:
        relay.settings = settings
        relay.secrets = settings["secrets_dir"]
        yield relay
    os.environ.pop("TORJAIL_AGE_IDENTITY_FILE", None)
    shutil.rmtree(secrets)


def _deploy(relay, *args, deploy_file="deploy.py", **env):
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        return relay.pyinfra(deploy_file, *args, settings=relay.settings)
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)


def _keys(relay):
    return set(relay.run(f"ls -1A {KEYS}")[1].split())


def _tor_pids(relay):
    return relay.run("pgrep -x tor")[1].split()


def test_offline_master_relay_runs_without_its_master_secret_key(relay):
    result = _deploy(relay, "-vvv")
    assert result.returncode == 0, result.stdout[-5000:]
    assert _keys(relay) >= {"ed25519_signing_secret_key", "ed25519_signing_cert", "ed25519_master_id_public_key"}
    assert not {"ed25519_master_id_secret_key", "ed25519_master_id_secret_key_encrypted"} & _keys(relay)
    listing = relay.run(f"ls -ln {KEYS}/ed25519_signing_secret_key {KEYS}/ed25519_signing_cert")[1]
    assert [line.split()[0] + " " + line.split()[2] for line in listing.splitlines()] == ["-rw------- 256"] * 2
    reply = relay.run(CONTROL)[1]
    assert "250-OfflineMasterKey=1" in reply or "250 OfflineMasterKey=1" in reply, reply
    assert "fingerprint=" in reply, reply
    assert "OfflineMasterKey 1" in relay.run(f"cat {TORRC}")[1]
    signing = relay.run(f"base64 -w0 {KEYS}/ed25519_signing_secret_key")[1].strip()
    assert signing and signing not in result.stdout, "the signing key appeared in pyinfra's output at -vvv"
    kept = sorted(os.listdir(os.path.join(relay.secrets, "identity")))
    assert kept == ["ed25519_master_id_public_key.age", "ed25519_master_id_secret_key.age", "ssh_host_key"]


def test_second_deploy_changes_nothing(relay):
    result = _deploy(relay)
    assert result.returncode == 0, result.stdout[-5000:]
    assert changes(result.stdout) == 0, result.stdout[-5000:]


def test_renewal_replaces_the_certificate_and_reloads_tor(relay):
    cert = f"{KEYS}/ed25519_signing_cert"
    before, pids = relay.run(f"sha256sum {cert}")[1], _tor_pids(relay)
    not_due = _deploy(relay, deploy_file="renew_keys.py")
    assert not_due.returncode == 0 and changes(not_due.stdout) == 0, not_due.stdout[-5000:]
    result = _deploy(relay, "-vvv", deploy_file="renew_keys.py", TORJAIL_RENEW_KEYS="always")
    assert result.returncode == 0, result.stdout[-5000:]
    assert relay.run(f"sha256sum {cert}")[1] != before
    assert _tor_pids(relay) == pids, "tor was restarted, not reloaded"
    reply = relay.run(CONTROL)[1]
    assert "OfflineMasterKey=1" in reply and "fingerprint=" in reply, reply
    signing = relay.run(f"base64 -w0 {KEYS}/ed25519_signing_secret_key")[1].strip()
    assert signing not in result.stdout
    log = relay.run(f"cat {DATA}/../../log/tor/notices.log")[1]
    assert "[err]" not in log, log[-3000:]


def test_planted_master_key_stops_the_deploy_naming_the_file(relay):
    planted = f"{KEYS}/ed25519_master_id_secret_key"
    relay.run(f"head -c 96 /dev/urandom > {planted}")
    torrc = relay.run(f"sha256sum {TORRC}")[1]
    result = _deploy(relay)
    assert result.returncode != 0
    assert planted in result.stdout and "nothing was changed" in result.stdout, result.stdout[-3000:]
    assert relay.run(f"sha256sum {TORRC}")[1] == torrc
    renewal = _deploy(relay, deploy_file="renew_keys.py", TORJAIL_RENEW_KEYS="always")
    assert renewal.returncode != 0 and planted in renewal.stdout
    relay.run(f"rm -f {planted}")
