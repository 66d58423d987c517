"""GEOM providers of a lab host: the fixed disk (vtbd0 and its partitions), md(4) units and GELI providers.

md units and GELI providers live in the kernel state ("md" and "geli"); each is backed by a Linux loop device,
except GELI providers on the fixed disk's partitions, which exist only as state (the lab's disk is not a real
block device). /dev/mdN and /dev/mdN.eli are block nodes with the loop's device numbers, so a process opening
them reaches the real data. This module is the kernel side; the commands (mdconfig, geli, ...) are its users.
"""

import os

from lab.freebsd import kernel, loopdev

DEV = loopdev.DEV
MD_SECTOR = 512
# The lab's disk as FreeBSD would see it on a VirtIO server: boot, root (UFS) and swap partitions.
DISKS = {
    "vtbd0": 20 * 2**30,
    "vtbd0p1": 512 * 2**10,
    "vtbd0p2": 20 * 2**30 - 2 * 2**30 - 512 * 2**10 - 2**20,
    "vtbd0p3": 2 * 2**30,
}

# GELI flags (sys/geom/eli/g_eli.h) in the order geli list prints them.
ELI_FLAG_NAMES = [
    ("SUSPEND", 0x00100000), ("SINGLE-KEY", 0x00020000), ("NATIVE-BYTE-ORDER", 0x00010000),
    ("ONETIME", 0x00000001), ("BOOT", 0x00000002), ("W-DETACH", 0x00000004), ("RW-DETACH", 0x00000008),
    ("AUTH", 0x00000010), ("W-OPEN", 0x00040000), ("DESTROY", 0x00080000), ("READ-ONLY", 0x00000020),
    ("NODELETE", 0x00000040), ("GELIBOOT", 0x00000080), ("GELIDISPLAYPASS", 0x00000100),
    ("AUTORESIZE", 0x00000200),
]
FLAG = dict(ELI_FLAG_NAMES)


class NoProvider(Exception):
    pass


def short_name(name):
    """`/dev/md0.eli` -> `md0.eli`."""
    return name[len(DEV) + 1:] if name.startswith(DEV + "/") else name.removeprefix("/dev/")


def md_units():
    """{unit number: {"file", "size", "loop", "type", "readonly"}} of the attached md units."""
    return {int(unit): info for unit, info in kernel.read("md", {}).get("units", {}).items()}


def eli_providers():
    """{consumer name (e.g. md0): state} of the attached GELI providers."""
    return kernel.read("geli", {}).get("providers", {})


def provider(name):
    """{"name", "mediasize", "sectorsize", "node"} of a provider; node is None for state-only ones."""
    name = short_name(name)
    if name.endswith(".eli"):
        eli = eli_providers().get(name[:-4])
        if eli is None:
            raise NoProvider(name)
        node = loopdev.node(eli["loop"]) if eli.get("loop") is not None else None
        return {"name": name, "mediasize": eli["mediasize"], "sectorsize": eli["sectorsize"], "node": node}
    if name.startswith("md") and name[2:].isdigit():
        unit = md_units().get(int(name[2:]))
        if unit is None:
            raise NoProvider(name)
        return {"name": name, "mediasize": unit["size"], "sectorsize": MD_SECTOR, "node": loopdev.node(unit["loop"])}
    if name in DISKS:
        return {"name": name, "mediasize": DISKS[name], "sectorsize": MD_SECTOR, "node": None}
    raise NoProvider(name)


def read_last_sector(prov):
    """The last sector of a provider (where GELI keeps its metadata), or None when it cannot be read."""
    if prov["node"] is None:
        return None
    with open(prov["node"], "rb") as handle:
        handle.seek(prov["mediasize"] - prov["sectorsize"])
        return handle.read(prov["sectorsize"])


def write_last_sector(prov, data):
    if prov["node"] is None:
        raise OSError(30, "Read-only file system")
    data = data.ljust(prov["sectorsize"], b"\0")[: prov["sectorsize"]]
    fd = os.open(prov["node"], os.O_WRONLY)
    try:
        os.pwrite(fd, data, prov["mediasize"] - prov["sectorsize"])
        os.fsync(fd)
    finally:
        os.close(fd)


def eli_create(consumer, metadata, onetime, detach_on_close, read_only=False):
    """Create the GELI provider CONSUMER.eli (kernel side of attach/onetime) and its /dev node."""
    prov = provider(consumer)
    sectorsize = metadata["sectorsize"]
    mediasize = prov["mediasize"] if onetime else prov["mediasize"] - prov["sectorsize"]
    mediasize -= mediasize % sectorsize
    flags = metadata["flags"] & ~FLAG["W-DETACH"]
    if onetime:
        flags |= FLAG["ONETIME"]
    if detach_on_close:
        flags |= FLAG["W-DETACH"]
    if read_only:
        flags |= FLAG["READ-ONLY"]
    loop = None
    if prov["node"] is not None:
        loop = loopdev.attach(prov["node"], sizelimit=mediasize, block_size=sectorsize, read_only=read_only)
    with kernel.update("geli", {}) as state:
        state.setdefault("providers", {})[consumer] = {
            "ealgo": metadata["ealgo"], "keylen": metadata["keylen"], "sectorsize": sectorsize,
            "flags": flags, "version": metadata.get("version", 7), "mediasize": mediasize,
            "consumer_size": prov["mediasize"], "consumer_sectorsize": prov["sectorsize"], "loop": loop,
        }
    if loop is not None:
        loopdev.make_device_node(os.path.join(DEV, consumer + ".eli"), loop)


def eli_destroy(consumer, force=False):
    """Detach CONSUMER.eli. Returns an errno (16 while it is open and not forced) or 0."""
    eli = eli_providers().get(consumer)
    if eli is None:
        return 6  # ENXIO
    if eli.get("loop") is not None:
        if not force and (loopdev.in_use(eli["loop"]) or swap_uses(consumer + ".eli")):
            return 16
        loopdev.detach(eli["loop"])
    with kernel.update("geli", {}) as state:
        state.get("providers", {}).pop(consumer, None)
    loopdev.remove_device_node(os.path.join(DEV, consumer + ".eli"))
    return 0


def eli_set_flag(consumer, flag, on=True):
    with kernel.update("geli", {}) as state:
        eli = state.get("providers", {}).get(consumer)
        if eli is not None:
            eli["flags"] = eli["flags"] | flag if on else eli["flags"] & ~flag


def last_write_close(name):
    """A writer closed provider `name` for the last time: GELI providers attached with -d detach now."""
    name = short_name(name)
    if not name.endswith(".eli"):
        return
    consumer = name[:-4]
    eli = eli_providers().get(consumer)
    if eli is None:
        return
    eli_set_flag(consumer, FLAG["W-OPEN"], on=False)
    if eli["flags"] & FLAG["W-DETACH"]:
        eli_destroy(consumer, force=True)


def swap_uses(name):
    return any(short_name(dev["device"]) == name for dev in kernel.read("swap", {}).get("devices", []))
