"""The lab host's network: a network namespace linked to the machine by a veth pair.

Inside, the link is called vtnet0 (a FreeBSD VM's NIC) and carries the lab host's "public" address
198.18.N.2/24 with a default route through the machine side 198.18.N.1. Nothing is routed beyond the
machine. Every function is idempotent and touches only the names the lab gave.
"""

import json
import os
import subprocess

from lab import paths


def _ip(*args, netns=None, check=True):
    argv = ["ip"] + (["-n", netns] if netns else []) + list(args)
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def netns_exists(name):
    return os.path.exists(f"/run/netns/{paths.netns_name(name)}")


def link_exists(ifname, netns=None):
    return _ip("link", "show", "dev", ifname, netns=netns, check=False).returncode == 0


def _has_address(ifname, cidr, netns=None):
    out = _ip("-o", "addr", "show", "dev", ifname, netns=netns, check=False).stdout
    return f" {cidr} " in out


def ensure(name, index):
    """Create (or complete) the namespace, the veth pair, the addresses and the default route."""
    ns = paths.netns_name(name)
    outer = paths.veth_name(index)
    peer = outer + "p"
    if not netns_exists(name):
        _ip("netns", "add", ns)
    _ip("link", "set", "lo", "up", netns=ns)
    if not link_exists("vtnet0", netns=ns):
        if link_exists(outer):
            _ip("link", "del", outer)
        _ip("link", "add", outer, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", ns)
        _ip("link", "set", peer, "name", "vtnet0", netns=ns)
    if not _has_address(outer, f"{paths.gateway(index)}/24"):
        _ip("addr", "add", f"{paths.gateway(index)}/24", "dev", outer)
    _ip("link", "set", outer, "up")
    if not _has_address("vtnet0", f"{paths.address(index)}/24", netns=ns):
        _ip("addr", "add", f"{paths.address(index)}/24", "dev", "vtnet0", netns=ns)
    _ip("link", "set", "vtnet0", "up", netns=ns)
    _ip("route", "replace", "default", "via", paths.gateway(index), netns=ns)


def reset(name, index):
    """What a power-off drops from the lab host's network, done from the machine (the namespace outlives
    the lab host's processes): cloned interfaces, every address but vtnet0's own and loopback's, routes
    and policy rules added at run time, and the nftables ruleset (the lab's pf). `ensure` adds the default
    route back at the next boot."""
    ns = paths.netns_name(name)
    if not netns_exists(name):
        return
    for link in json.loads(_ip("-j", "link", "show", netns=ns).stdout or "[]"):
        if link["ifname"] not in ("lo", "vtnet0"):
            _ip("link", "del", "dev", link["ifname"], netns=ns, check=False)
    kept = {("lo", "127.0.0.1/8"), ("lo", "::1/128"), ("vtnet0", f"{paths.address(index)}/24")}
    for link in json.loads(_ip("-j", "addr", "show", netns=ns).stdout or "[]"):
        for info in link.get("addr_info", []):
            cidr = f"{info['local']}/{info['prefixlen']}"
            if (link["ifname"], cidr) not in kept and not cidr.startswith("fe80:"):
                _ip("addr", "del", cidr, "dev", link["ifname"], netns=ns, check=False)
    for family in ("-4", "-6"):
        for route in json.loads(_ip(family, "-j", "route", "show", "table", "all", netns=ns).stdout or "[]"):
            if route.get("protocol") == "kernel" or route.get("table") == "local" or route.get("type") == "local":
                continue
            table = route.get("table", "main")
            _ip(family, "route", "del", route["dst"], *(["via", route["gateway"]] if "gateway" in route else []),
                *(["dev", route["dev"]] if "dev" in route else []), "table", table, netns=ns, check=False)
        for rule in json.loads(_ip(family, "-j", "rule", "show", netns=ns).stdout or "[]"):
            if rule.get("priority") not in (0, 32766, 32767):
                _ip(family, "rule", "del", "priority", str(rule["priority"]), netns=ns, check=False)
    subprocess.run(["ip", "netns", "exec", ns, "nft", "flush", "ruleset"], capture_output=True, check=False)


def remove(name, index):
    """Delete the veth pair and the namespace (deleting one end of a veth pair deletes both)."""
    outer = paths.veth_name(index)
    if link_exists(outer):
        _ip("link", "del", outer)
    if netns_exists(name):
        _ip("netns", "del", paths.netns_name(name))


def ensure_mirror_address():
    """The mirror's address on the machine's loopback interface, reachable from every lab host."""
    if not _has_address("lo", f"{paths.MIRROR_ADDRESS}/32"):
        _ip("addr", "add", f"{paths.MIRROR_ADDRESS}/32", "dev", "lo")


def remove_mirror_address():
    if _has_address("lo", f"{paths.MIRROR_ADDRESS}/32"):
        _ip("addr", "del", f"{paths.MIRROR_ADDRESS}/32", "dev", "lo")
