"""Kernel linker state of a lab host: which .ko files are loaded and which modules they bring
(kldload(2), kldunload(2), kldstat(2), modfind(2)). State "kld" in the kernel state: {"files": [...]}.

A fresh FreeBSD 14 GENERIC kernel has md, UFS, devfs, nullfs and AES-NI built in; pf, pflog and
geom_eli come as loadable files. The catalogue below lists the files the lab knows, with the modules each holds
and the files it depends on.
"""

import os
import stat

from lab.freebsd import kernel

KERNEL_FILE = {"id": 1, "name": "kernel", "refs": 1, "address": 0xFFFFFFFF80200000, "size": 0x1F3E2D0,
               "modules": ["g_md", "g_part", "g_label", "ufs", "devfs", "nullfs", "if_lo", "if_vtnet",
                           "virtio_blk", "crypto", "cryptosoft", "aesni", "zlib"]}
CATALOGUE = {
    "pf.ko": {"size": 0x5E9A0, "modules": ["pf"], "depends": []},
    "pflog.ko": {"size": 0x3140, "modules": ["pflog"], "depends": ["pf.ko"]},
    "pfsync.ko": {"size": 0x10F50, "modules": ["pfsync"], "depends": ["pf.ko"]},
    "geom_eli.ko": {"size": 0x2B6B0, "modules": ["g_eli"], "depends": []},
    "if_bridge.ko": {"size": 0xE740, "modules": ["if_bridge"], "depends": []},
    "if_epair.ko": {"size": 0x6B50, "modules": ["if_epair"], "depends": []},
    "tmpfs.ko": {"size": 0xF1B0, "modules": ["tmpfs"], "depends": []},
    "fdescfs.ko": {"size": 0x5B60, "modules": ["fdescfs"], "depends": []},
    "linprocfs.ko": {"size": 0x12D00, "modules": ["linprocfs"], "depends": []},
    "accf_http.ko": {"size": 0x2120, "modules": ["accf_http"], "depends": []},
    "accf_data.ko": {"size": 0x1AC0, "modules": ["accf_data"], "depends": []},
    "cc_htcp.ko": {"size": 0x2570, "modules": ["cc_htcp"], "depends": []},
    "mac_portacl.ko": {"size": 0x3E80, "modules": ["mac_portacl"], "depends": []},
}
ADDRESS_BASE = 0xFFFFFFFF82200000


class KldError(Exception):
    """Carries the errno text a syscall failure would give."""


DEVICE_NODES = {"pf.ko": ("/dev/pf",)}


def file_name(name):
    """`pf`, `pf.ko` or `/boot/kernel/pf.ko` -> `pf.ko`."""
    base = name.rsplit("/", 1)[-1]
    return base if base.endswith(".ko") or base == "kernel" else base + ".ko"


def files():
    """Loaded files in id order, the kernel first."""
    loaded = kernel.read("kld", {}).get("files", [])
    kernel_file = dict(KERNEL_FILE, refs=KERNEL_FILE["refs"] + len(loaded))
    return [kernel_file] + loaded


def find_file(name):
    name = file_name(name)
    for entry in files():
        if entry["name"] == name:
            return entry
    return None


def find_module(module):
    """The (file, module id) that provides `module`, or None (modfind)."""
    module_id = 0
    for entry in files():
        for name in entry["modules"]:
            module_id += 1
            if name == module:
                return entry, module_id
    return None


def is_loaded(name):
    """Whether a module (e.g. `pf`, `g_eli`) or file (e.g. `geom_eli.ko`) is present."""
    return find_module(name) is not None or (name.endswith(".ko") and find_file(name) is not None)


def load(name):
    """kldload(2): load a file and its dependencies; returns the new file id."""
    wanted = file_name(name)
    if find_file(wanted) is not None:
        raise KldError("module already loaded or in kernel")
    if wanted not in CATALOGUE:
        raise KldError("No such file or directory")
    with kernel.update("kld", {}) as state:
        loaded = state.setdefault("files", [])
        file_id = _load_into(loaded, wanted)
    _device_nodes(wanted, present=True)
    return file_id


def _device_nodes(file, present):
    """The /dev entries a module's driver makes (devfs does it on FreeBSD): /dev/pf appears with pf.ko."""
    for path in DEVICE_NODES.get(file, ()):
        if present and not os.path.exists(path):
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        elif not present and os.path.exists(path):
            os.unlink(path)


def _load_into(loaded, wanted):
    for dependency in CATALOGUE[wanted]["depends"]:
        present = [entry for entry in loaded if entry["name"] == dependency]
        if present:
            present[0]["refs"] += 1
        else:
            _load_into(loaded, dependency)
            [entry for entry in loaded if entry["name"] == dependency][0]["refs"] += 1
    next_id = max([entry["id"] for entry in loaded] + [1]) + 1
    address = ADDRESS_BASE + sum(CATALOGUE[entry["name"]]["size"] + 0x1000 for entry in loaded)
    loaded.append({"id": next_id, "name": wanted, "refs": 1, "address": address,
                   "size": CATALOGUE[wanted]["size"], "modules": list(CATALOGUE[wanted]["modules"]),
                   "path": "/boot/kernel/" + wanted})
    return next_id


def unload(name=None, file_id=None, force=False):
    """kldunload(2) by file name or id."""
    with kernel.update("kld", {}) as state:
        loaded = state.setdefault("files", [])
        matches = [entry for entry in loaded
                   if (file_id is not None and entry["id"] == file_id)
                   or (name is not None and entry["name"] == file_name(name))]
        if not matches:
            if file_id == 1 or (name is not None and file_name(name) == "kernel"):
                raise KldError("Device busy")
            raise KldError("can't find file")
        entry = matches[0]
        if entry["refs"] > 1 and not force:
            raise KldError("Device busy")
        if entry["modules"] == ["g_eli"] and kernel.read("geli", {}).get("providers"):
            raise KldError("Device busy")
        loaded.remove(entry)
        _device_nodes(entry["name"], present=False)
        for dependency in CATALOGUE[entry["name"]]["depends"]:
            for other in loaded:
                if other["name"] == dependency:
                    other["refs"] -= 1
