"""A small deploy for testing the plan harness: an encrypted image made ready and a jail started.

The passphrase comes from the environment variable SAMPLE_GELI_PASSPHRASE, as a real deploy would
take it from its secrets source, and is handed to the operations only as a HiddenValue.
"""

import os

from pyinfra import host
from pyinfra.api import HiddenValue

from torjail.freebsd import geli, jail, kld, md, rc, sysctl
from torjail.freebsd.geli import GeliImage
from torjail.procedures import image

IMAGE = "/var/jails/tor.img"
UNIT = 10
passphrase = HiddenValue(os.environ["SAMPLE_GELI_PASSPHRASE"])

kld.module("geom_eli")
rc.value("dumpdev", "NO")
rc.value("jail_enable", "YES")
sysctl.value("kern.ipc.somaxconn", 4096, raise_only=True)

found = host.get_fact(GeliImage, path=IMAGE)
if found["state"] == "unknown":
    raise RuntimeError(f"{IMAGE} exists but holds no GELI metadata: not touching it")
if found["state"] == "absent":
    image.created(IMAGE, "2G")
    image.encrypted(IMAGE, UNIT, passphrase)
else:
    md.device(UNIT, image=IMAGE)
    geli.provider(f"md{UNIT}", passphrase)
jail.jail("tor", config="/etc/jail.conf.d/tor.conf")
