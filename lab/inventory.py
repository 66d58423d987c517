"""pyinfra inventory of the lab: `pyinfra lab/inventory.py deploy.py` runs the real CLI over real SSH.

The lab host is TORJAIL_LAB_HOST (default lab1, brought up with `python -m lab up lab1`), or several lab hosts
deployed at once, their names separated by commas (`lab1,lab2`); a lab host's address is
198.18.N.2 with N its lab index. Connection data: root with the lab's key, strict host key checking against
the known_hosts file the lab wrote for that host. The relay settings are host data: a relay on the lab host
believes 198.18.N.2 is its public address, and takes base.txz from the lab's mirror (https, the lab's CA), with
the sha256 pinned from the mirror's MANIFEST on this machine's disk, as an operator copies it from a signed
announcement. Its secrets directory
(the SSH host key record, say) lives with the lab host and goes with it: a new lab host of the same name has new
host keys. TORJAIL_LAB_SETTINGS (JSON) changes settings for one run, e.g. '{"bandwidth_rate": "3 MBytes"}';
TORJAIL_LAB_HOST_SETTINGS (JSON, by lab host name) changes one host's, e.g. '{"bench2": {"ssh_port": 2202}}'.
TORJAIL_LAB_ALIAS gives the one lab host another inventory name: a relay rebuilt on new hardware keeps its
inventory entry while its address changes.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lab import mirror, paths  # noqa: E402

# pyinfra reads every public list of an inventory as a group of hosts: the lab host names are not one.
_NAMES = [name.strip() for name in os.environ.get("TORJAIL_LAB_HOST", "lab1").split(",") if name.strip()]


def _index(name):
    try:
        with open(os.path.join(paths.host_dir(name), "state.json")) as handle:
            return json.load(handle)["index"]
    except FileNotFoundError:
        return int(os.environ.get("TORJAIL_LAB_INDEX", "1"))


def _pinned_sha256():
    """base.txz's sha256 as the lab's mirror built it (None before the mirror exists: the deploy then refuses)."""
    try:
        with open(os.path.join(mirror.release_dir(), "MANIFEST")) as handle:
            return next(line.split("\t")[1] for line in handle if line.startswith("base.txz\t"))
    except (FileNotFoundError, StopIteration):
        return None


def host_data(name):
    """pyinfra host data for the lab host `name`: connection data, then the relay's settings."""
    index = _index(name)
    return {
        "ssh_hostname": paths.address(index),
        "ssh_user": "root",
        "ssh_port": 22,
        "ssh_key": paths.key_path(),
        "ssh_known_hosts_file": paths.known_hosts_path(name),
        "ssh_strict_host_key_checking": "yes",
        "relay_nickname": f"TorjailLab{index}",
        "relay_contact": "lab operator <operator@example.invalid>",
        "public_ipv4": paths.address(index),
        "secrets_dir": paths.secrets_dir(name),
        "identity": "on-relay",  # a test that needs offline-master keys sets it, with its own age key
        "release_mirror": paths.mirror_url() + "/releases",
        "jail_release_sha256": _pinned_sha256(),
        "image_size": "2G",
        "accounting_max": "10 GBytes",
        "admin_networks": ["198.18.0.0/15"],
    }


def overrides(name):
    """Settings to change for a run of the lab host `name`: the JSON object in TORJAIL_LAB_SETTINGS (every host,
    e.g. to preview a change), then its entry in TORJAIL_LAB_HOST_SETTINGS (e.g. its own delaying relay)."""
    per_host = json.loads(os.environ.get("TORJAIL_LAB_HOST_SETTINGS", "{}")).get(name, {})
    return {**json.loads(os.environ.get("TORJAIL_LAB_SETTINGS", "{}")), **per_host}


def inventory_name(name):
    """The inventory name of the lab host `name`: itself, or TORJAIL_LAB_ALIAS when one lab host is deployed."""
    alias = os.environ.get("TORJAIL_LAB_ALIAS")
    if alias and len(_NAMES) != 1:
        raise SystemExit("TORJAIL_LAB_ALIAS names one lab host: set TORJAIL_LAB_HOST to a single name")
    return alias or name


lab_hosts = [(inventory_name(name), {**host_data(name), **overrides(name)}) for name in _NAMES]
