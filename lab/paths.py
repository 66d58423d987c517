"""Where the lab keeps its state on the machine, and the names and addresses of each lab host.

Everything the lab makes lives under one directory (TORJAIL_LAB_DIR, default /var/lib/torjail-lab), so
cleaning up never needs to guess. Lab host number N (1..99) owns 198.18.N.0/24: the machine side of its
veth link is 198.18.N.1, the lab host itself 198.18.N.2. The mirror listens on 198.18.0.1, an address the
lab adds to the machine's loopback interface and that every lab host reaches through its default route.
"""

import os
import re

MAX_INDEX = 99
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")

MIRROR_ADDRESS = "198.18.0.1"
MIRROR_PORT = int(os.environ.get("TORJAIL_LAB_MIRROR_PORT", "443"))


def lab_dir():
    return os.environ.get("TORJAIL_LAB_DIR", "/var/lib/torjail-lab")


def check_name(name):
    if not NAME_RE.match(name):
        raise ValueError(f"invalid lab host name {name!r}: use lowercase letters, digits and '-', starting with a letter")
    return name


def host_dir(name):
    return os.path.join(lab_dir(), "hosts", check_name(name))


def base_dir(recipe):
    """The cached base root made by one recipe of lab.rootfs (None: the unversioned one of older labs)."""
    return os.path.join(lab_dir(), "base" if recipe is None else f"base-{recipe}")


def key_path():
    """The lab's SSH key pair (private key; the public key is KEY.pub), shared by all lab hosts."""
    return os.path.join(lab_dir(), "id_ed25519")


def mirror_dir():
    return os.path.join(lab_dir(), "mirror")


def mirror_url():
    port = "" if MIRROR_PORT == 443 else f":{MIRROR_PORT}"
    return f"https://{MIRROR_ADDRESS}{port}"


def mirror_ca_path():
    """The lab's own certificate authority (PEM): it signs the mirror's certificate, lab hosts trust it."""
    return os.path.join(lab_dir(), "mirror-ca.pem")


def mirror_certificate_paths():
    """The mirror's certificate chain and private key (PEM)."""
    return os.path.join(lab_dir(), "mirror-cert.pem"), os.path.join(lab_dir(), "mirror-key.pem")


def address(index):
    """The lab host's own address (its 'public' IPv4 address on vtnet0)."""
    return f"198.18.{index}.2"


def gateway(index):
    """The machine side of the lab host's link, its default router."""
    return f"198.18.{index}.1"


def netns_name(name):
    return f"lab-{check_name(name)}"


def veth_name(index):
    """The machine side of the veth pair (the lab side is renamed vtnet0 inside the lab host)."""
    return f"tjlab{index}"


def ssh_config_path(name):
    return os.path.join(host_dir(name), "ssh_config")


def known_hosts_path(name):
    return os.path.join(host_dir(name), "known_hosts")


def secrets_dir(name):
    """The operator's secrets directory for a relay on this lab host (its SSH host key record, say)."""
    return os.path.join(host_dir(name), "secrets")
