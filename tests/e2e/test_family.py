"""End to end on two lab hosts deployed from one inventory, with the real tor: both relays carry the same family key
and FamilyId, and, from the deploy after their tor first ran, each other's fingerprint in MyFamily, as the running
tor reports over its control socket; the fingerprints come from the relays, the key never shows in pyinfra's output.
Then one relay is seized: rebuilt on a fresh lab host with TORJAIL_SEIZED, it has a new fingerprint, the family a new
key, and the remaining relay the new FamilyId and, a deploy later, the new fingerprint in MyFamily.

The tests run in file order on the same two lab hosts: each step starts from the state the previous one left.
"""

import contextlib
import json
import os
import shutil
import subprocess
import tempfile

import pytest
from pyrage import x25519

from lab import host
from relay import PASSPHRASE, PYINFRA, ROOT, changes, relay_host

pytestmark = pytest.mark.lab

HOSTS = (("fam1", 53), ("fam2", 54))
FAMILY = "labfleet"
DATA = "/var/jails/tor/var/db/tor"
KEY = f"{DATA}/keys/{FAMILY}.secret_family_key"
TORRC = "/var/jails/tor/usr/local/etc/tor/torrc"
CONTROL = (f"cookie=$(od -An -v -t x1 {DATA}/control_auth_cookie | tr -d ' \\n') && "
           f"printf 'AUTHENTICATE %s\\r\\nGETCONF FamilyId\\r\\nGETCONF MyFamily\\r\\nQUIT\\r\\n' "
           f"\"$cookie\" | nc -w 10 -U {DATA}/control | tr -d '\\r'")


@pytest.fixture(scope="module")
def fleet():
    secrets = tempfile.mkdtemp(prefix="torjail-family-secrets-")
    age_key = x25519.Identity.generate()
    settings = {"family": FAMILY, "age_recipient": str(age_key.to_public()),
                "secrets_dir": os.path.join(secrets, "torjail")}
    with contextlib.ExitStack() as stack:
        relays = [stack.enter_context(relay_host(name, index)) for name, index in HOSTS]
        yield {"relays": relays, "settings": settings, "secrets": settings["secrets_dir"]}
    shutil.rmtree(secrets)


def deploy(fleet, *args, **env):
    """The real pyinfra CLI against both lab hosts at once, as `pyinfra inventory.py deploy.py` does a fleet."""
    env = {**os.environ, "TORJAIL_LAB_HOST": ",".join(name for name, _ in HOSTS),
           "TORJAIL_GELI_PASSPHRASE": PASSPHRASE, "TORJAIL_LAB_SETTINGS": json.dumps(fleet["settings"]), **env}
    for name in ("TORJAIL_AGE_IDENTITY", "TORJAIL_AGE_IDENTITY_FILE"):  # the run that makes the key needs none
        env.pop(name, None)
    return subprocess.run([PYINFRA, "lab/inventory.py", "deploy.py", "-y", *args], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=1200)


def fingerprint(relay):
    status, output, err = relay.run(f"cat {DATA}/fingerprint")
    assert status == 0, err
    return output.split()[1]


def tor_says(relay):
    """{option: value} of FamilyId and MyFamily in the running tor."""
    reply = relay.run(CONTROL)[1]
    return dict(line[4:].split("=", 1) for line in reply.splitlines() if line[4:].startswith(("FamilyId=",
                                                                                           "MyFamily=")))


def test_first_deploy_gives_both_relays_the_family_key(fleet):
    result = deploy(fleet, "-vvv")
    assert result.returncode == 0, result.stdout[-5000:]
    public = open(os.path.join(fleet["secrets"], "families", FAMILY, f"{FAMILY}.public_family_id")).read().strip()
    digests = set()
    for relay in fleet["relays"]:
        listing = relay.run(f"ls -ln {KEY}")[1].split()
        assert listing[0] == "-rw-------" and listing[2] == "256", listing
        digests.add(relay.run(f"sha256 -q {KEY}")[1].strip())
        secret = relay.run(f"base64 -w0 {KEY}")[1].strip()
        assert secret and secret not in result.stdout, "the family key appeared in pyinfra's output at -vvv"
        assert f"\nFamilyId {public}\n" in relay.run(f"cat {TORRC}")[1]
        assert tor_says(relay).get("FamilyId") == public
    assert len(digests) == 1
    assert "MyFamily leaves out" in result.stdout  # neither tor had run when the torrcs were planned


def test_next_deploy_lists_each_other_in_my_family(fleet):
    result = deploy(fleet)
    assert result.returncode == 0, result.stdout[-5000:]
    first, second = fleet["relays"]
    for relay, other in ((first, second), (second, first)):
        assert f"\nMyFamily ${fingerprint(other)}\n" in relay.run(f"cat {TORRC}")[1]
        assert tor_says(relay).get("MyFamily") == f"${fingerprint(other)}"
        recorded = open(os.path.join(fleet["secrets"], other.name, "fingerprint")).read().split()
        assert recorded[1] == fingerprint(other)


def test_third_deploy_changes_nothing(fleet):
    result = deploy(fleet)
    assert result.returncode == 0, result.stdout[-5000:]
    assert changes(result.stdout) == 0, result.stdout[-5000:]


def public_id(fleet):
    return open(os.path.join(fleet["secrets"], "families", FAMILY, f"{FAMILY}.public_family_id")).read().strip()


def test_a_seized_relay_comes_back_with_a_new_identity_and_the_family_with_a_new_key(fleet):
    remaining, seized = fleet["relays"]
    old_fingerprint, old_id = fingerprint(seized), public_id(fleet)
    host.destroy(seized.name, log=lambda text: None)  # the seized server is gone; a fresh one takes its place
    host.up(seized.name, seized.index, log=lambda text: None)
    refused = deploy(fleet)  # without TORJAIL_SEIZED the new server's SSH host key is not the recorded one
    assert refused.returncode != 0 and "SHA256:" in refused.stdout, refused.stdout[-3000:]
    result = deploy(fleet, TORJAIL_SEIZED=seized.name)
    assert result.returncode == 0, result.stdout[-5000:]
    assert f"{seized.name}: seized: old fingerprint " in result.stdout and old_fingerprint in result.stdout
    new_id = public_id(fleet)
    assert new_id != old_id
    assert fingerprint(seized) != old_fingerprint
    for relay in fleet["relays"]:
        assert tor_says(relay).get("FamilyId") == new_id
    assert "MyFamily" not in tor_says(remaining) or old_fingerprint not in tor_says(remaining)["MyFamily"]
    result = deploy(fleet)
    assert result.returncode == 0, result.stdout[-5000:]
    assert tor_says(remaining).get("MyFamily") == f"${fingerprint(seized)}"
    assert tor_says(seized).get("MyFamily") == f"${fingerprint(remaining)}"
