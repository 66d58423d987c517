"""End to end on a lab host, through the real pyinfra CLI: the vault is never lost. A settings change that would
replace a live image, GELI settings the image does not follow, a missing image and a restored image at a stale
marker's path all stop the deploy with their message, and the image's GELI metadata (its last sector: salt and
encrypted keys) and a canary in the jail survive every attempt.

The tests run in file order on one lab host: each step starts from the state the previous one left.
"""

import pytest

from relay import changes, relay_host
from torjail.procedures import image

pytestmark = pytest.mark.lab

IMAGE = "/var/jails/tor.img"
MARKER = image.marker_path(IMAGE)
CANARY = "/var/jails/tor/root/canary"
ELSEWHERE = "/var/jails/tor.img.moved"


@pytest.fixture(scope="module")
def relay():
    with relay_host("h3a", 35) as relay:
        yield relay


def _run(relay, command):
    status, output, err = relay.run(command)
    assert status == 0, f"{command}: {err}"
    return output.strip()


def _metadata(relay, path=IMAGE):
    return _run(relay, f"tail -c 512 {path} | sha256")


def _refused(relay, says, settings=None):
    result = relay.pyinfra("deploy.py", settings=settings)
    assert result.returncode != 0, result.stdout[-3000:]
    assert says in result.stdout, result.stdout[-3000:]
    assert "--> Starting operation" not in result.stdout, "an operation ran before the refusal"


def test_fresh_deploy_records_the_image_and_drops_its_marker(relay):
    result = relay.pyinfra("deploy.py")
    assert result.returncode == 0, result.stdout[-5000:]
    assert _run(relay, f"cat {image.record_path(IMAGE)}").startswith(f"torjail made an encrypted image at {IMAGE}.")
    assert relay.run(f"test -e {MARKER}")[0] == 1
    _run(relay, f"echo kept > {CANARY}")
    relay.metadata = _metadata(relay)


def test_geli_setting_drift_stops_the_deploy(relay):
    _refused(relay, "setting 'geli_key_length' is 128 but the image /var/jails/tor.img (md10.eli) was made with 256",
             settings={"geli_key_length": 128})


def test_image_path_changed_under_the_running_jail_stops_the_deploy(relay):
    _refused(relay, "a vault is live on this host (md10 is attached to /var/jails/tor.img; md10.eli is attached; "
                    "the jail root /var/jails/tor is mounted from /dev/md10.eli (image /var/jails/tor.img); the jail "
                    "tor is running)", settings={"image_path": "/var/jails/new.img"})
    assert "tor" in _run(relay, "jls name").split()
    assert relay.run("test -e /var/jails/new.img")[0] == 1
    assert _run(relay, f"cat {CANARY}") == "kept"


def test_missing_image_after_a_reboot_stops_the_deploy(relay):
    relay.reboot()
    _run(relay, f"mv {IMAGE} {ELSEWHERE}")
    _refused(relay, "the encrypted image is missing: there is no /var/jails/tor.img")
    assert relay.run(f"test -e {IMAGE}")[0] == 1, "no new image was made"


def test_restored_image_at_a_stale_marker_survives(relay):
    """The image comes back (a restore) while a stale marker lies beside the path: the deploy refuses, and the
    server-side guard of the discard, run as the deploy would run it, leaves the image in place."""
    _run(relay, f"mv {ELSEWHERE} {IMAGE} && echo 0123 > {MARKER}")
    _refused(relay, f"{MARKER} says a half-made image is at {IMAGE}, but the file there is not the one it names")
    status, _, err = relay.run(f"{image.belongs_guard(IMAGE)}rm -f {IMAGE} && rm -f {MARKER}")
    assert status == 1 and "is not the half-made image" in err
    assert _metadata(relay) == relay.metadata


def test_after_the_documented_way_out_the_relay_comes_back_unchanged(relay):
    _run(relay, f"rm {MARKER}")
    unlocked = relay.pyinfra("unlock.py")
    assert unlocked.returncode == 0, unlocked.stdout[-3000:]
    deployed = relay.pyinfra("deploy.py")
    assert deployed.returncode == 0, deployed.stdout[-3000:]
    assert changes(deployed.stdout) == 0, deployed.stdout[-3000:]
    assert _run(relay, f"cat {CANARY}") == "kept"
    assert _metadata(relay) == relay.metadata
