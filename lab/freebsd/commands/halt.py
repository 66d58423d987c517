"""/usr/libexec/lab/halt: release what a lab host holds outside its own namespaces before it stops or reboots.

Loop devices are global to the machine, so the md units and GELI providers of the kernel state are detached
here: filesystems on them are unmounted lazily first, then the loops are cleared (a loop still held by a
process is released by the Linux kernel as soon as that process ends).
"""

import os

from lab.freebsd import geom, kernel, loopdev, mounts


def main(argv):
    md_units = geom.md_units()
    providers = geom.eli_providers()
    lab_devices = {"/dev/" + consumer + ".eli" for consumer in providers}
    lab_devices |= {f"/dev/md{unit}" for unit in md_units}
    for entry in sorted(mounts.table(), key=lambda item: -len(item["mountpoint"])):
        if entry["device"] in lab_devices:
            try:
                mounts.unmount(entry["mountpoint"], mounts.MNT_DETACH)
            except OSError:
                pass
    loops = [eli["loop"] for eli in providers.values() if eli.get("loop") is not None]
    loops += [info["loop"] for _unit, info in sorted(md_units.items(), reverse=True)]
    for loop in loops:
        try:
            loopdev.detach(loop)
        except OSError:
            pass
    with kernel.update("geli", {}) as state:
        state["providers"] = {}
    with kernel.update("md", {}) as state:
        state["units"] = {}
    for name in lab_devices:
        loopdev.remove_device_node(os.path.join(geom.DEV, name[len("/dev/"):]))
    with kernel.update("swap", {}) as state:
        state["devices"] = []
    return 0
