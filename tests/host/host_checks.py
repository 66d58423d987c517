"""What the host checks share: which server a run is about and what its settings expect, how to read the output
of FreeBSD's own tools, how to ask tor's control socket inside the jail, and how to search the unencrypted disk.

Expected values come only from the deploy's settings loader and templates; observed values only from commands run
on the server through testinfra. Parsers that the deploy already has (torjail.freebsd facts) are reused; the ones
here read what only the checks look at: sockstat, ps, tor's control protocol, pfctl's rule listing, sysctl.conf.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field

import pytest
import testinfra
from testinfra.backend.base import BaseBackend

from torjail.freebsd.jail import Jails
from torjail.freebsd.mount import MountPoints
from torjail.settings import load_inventory, settings_for_inventory

DEFAULT_INVENTORY = "inventory.py"
OUTSIDE_ENV = "TORJAIL_VERIFY_OUTSIDE"

# tor's control socket and cookie inside the jail, as templates/torrc.j2 configures them.
CONTROL_SOCKET = "/var/db/tor/control"
CONTROL_COOKIE = "/var/db/tor/control_auth_cookie"
CONTROL_TIMEOUT = 10

# First words of the rule lines pfctl prints (-s rules, -s nat, -nv); everything else (macros, tables,
# options) is left out when rules are compared.
PF_RULE_WORDS = ("scrub", "match", "antispoof", "block", "pass", "nat", "rdr", "binat",
                 "anchor", "nat-anchor", "rdr-anchor", "binat-anchor")

_STASH_SETTINGS = pytest.StashKey[object]()
_STASH_FLEET = pytest.StashKey[list]()
_STASH_SERVER = pytest.StashKey[object]()


# --------------------------------------------------------------------------------- the server and its settings

def host_specs(config) -> list[str]:
    """The --hosts of this run, as given (e.g. ["ssh://relay1.example.org"]); [] without --hosts."""
    hosts = config.getoption("hosts", None)
    return [spec.strip() for spec in hosts.split(",") if spec.strip()] if hosts else []


def spec_host_name(spec: str) -> str:
    """The host name in a testinfra host spec: "ssh://root@relay1.example.org:22" -> "relay1.example.org"."""
    _, sep, rest = spec.partition("://")
    return BaseBackend.parse_hostspec(rest if sep else spec).name


def inventory_host_name(inventory, wanted: str) -> str:
    """The inventory's name for a host reached as `wanted`: its own name, else the host whose ssh_hostname it is."""
    names = [host.name for host in inventory]
    if wanted in names:
        return wanted
    matches = [host.name for host in inventory if host.data.dict().get("ssh_hostname") == wanted]
    if len(matches) == 1:
        return matches[0]
    raise pytest.UsageError(f"host {wanted!r} is not in the inventory (hosts: {', '.join(names)}); "
                            "give its inventory name with --inventory-host")


def settings_for_run(config):
    """Settings of the one jail this run checks (the server's only one, or the one --jail names: a relay's
    Settings or an OnionService), or None without --hosts (then every host check is skipped)."""
    if _STASH_SETTINGS in config.stash:
        return config.stash[_STASH_SETTINGS]
    specs = host_specs(config)
    settings, server, fleet = None, None, []
    if specs:
        if len(specs) != 1:
            raise pytest.UsageError("the host checks verify one server per run: give exactly one --hosts")
        # an absolute path: pyinfra caches inventory code by the name it was given
        inventory = load_inventory(os.path.abspath(config.getoption("inventory", None) or DEFAULT_INVENTORY))
        name = config.getoption("inventory_host", None) or inventory_host_name(inventory, spec_host_name(specs[0]))
        every = settings_for_inventory(inventory)
        server, fleet = every[name], [relay for host in every.values() for relay in host.relays]
        settings = _jail_of_run(config, server)
    config.stash[_STASH_SETTINGS] = settings
    config.stash[_STASH_SERVER] = server
    config.stash[_STASH_FLEET] = fleet
    return settings


def _jail_of_run(config, server):
    """The jail --jail names among the server's (a relay's Settings or an OnionService), or its only one."""
    wanted = config.getoption("jail", None)
    jails = server.jail_settings
    names = [jail.jail_name for jail in jails]
    if wanted is None and len(names) == 1:
        return jails[0]
    if wanted in names:
        return jails[names.index(wanted)]
    raise pytest.UsageError(f"{server.host_name} runs the jails {', '.join(names)}: give the one to check "
                            "with --jail NAME (one run per jail)")


def server_for_run(config):
    """Settings of the whole server of this run: what the host holds once (sshd, swap, pf), every jail's."""
    settings_for_run(config)
    return config.stash[_STASH_SERVER]


def fleet_for_run(config):
    """Settings of every relay of the inventory (a family's torrc lists the others)."""
    settings_for_run(config)
    return config.stash[_STASH_FLEET]


def remote_host(config):
    """The testinfra host of this run, the very object testinfra's own `host` fixture holds (same cache key)."""
    option = config.option
    return testinfra.get_hosts(
        host_specs(config),
        connection=option.connection,
        ssh_config=option.ssh_config,
        ssh_identity_file=option.ssh_identity_file,
        sudo=option.sudo,
        sudo_user=option.sudo_user,
        ansible_inventory=option.ansible_inventory,
        force_ansible=option.force_ansible,
    )[0]


def outside_allowed(config) -> bool:
    """Whether checks from the operator's side of the network may run (--outside or TORJAIL_VERIFY_OUTSIDE=1)."""
    return bool(config.getoption("outside", False)) or os.environ.get(OUTSIDE_ENV) == "1"


# --------------------------------------------------------------------------------- running with standard input

def run_with_input(host, command: str, data: bytes, timeout: int):
    """Run `command` on the server with `data` on its standard input, never on a command line.

    testinfra's host.run has no standard input, so this builds the same ssh command testinfra would (its ssh
    config, identity, sudo) and feeds the data through the pipe. Returns a subprocess.CompletedProcess.
    """
    backend = host.backend
    remote = backend.get_command(command)
    if backend.NAME in ("ssh", "safe-ssh"):
        ssh, ssh_args = backend._build_ssh_command(remote)
        local = backend.quote(" ".join(ssh), *ssh_args)
    elif backend.NAME == "local":
        local = remote
    else:
        pytest.skip(f"sending data on standard input needs testinfra's ssh backend, not {backend.NAME}")
    result = subprocess.run(local, shell=True, input=data, capture_output=True, timeout=timeout)
    if backend.NAME != "local" and result.returncode == 255:
        raise RuntimeError(f"ssh to {backend.hostname} failed: {result.stderr.decode(errors='replace')}")
    return result


# --------------------------------------------------------------------------------- parsers

def parse_sockstat(text: str) -> list[dict]:
    """Sockets from `sockstat` (USER COMMAND PID FD PROTO LOCAL-ADDRESS FOREIGN-ADDRESS), header left out.

    Addresses print as ADDRESS:PORT, IPv6 ones without brackets ("2001:db8::10:9001"), `*` for any.
    """
    sockets = []
    for line in text.splitlines():
        fields = line.split()
        proto_at = next((i for i, word in enumerate(fields) if re.fullmatch(r"(tcp|udp|sctp)[46]*", word)), None)
        if proto_at is None or proto_at < 4 or len(fields) < proto_at + 3:
            continue
        address, _, port = fields[proto_at + 1].rpartition(":")
        sockets.append({"user": fields[0], "command": fields[1], "pid": fields[2], "proto": fields[proto_at],
                        "local": fields[proto_at + 1], "address": address, "port": port,
                        "foreign": fields[proto_at + 2]})
    return sockets


def parse_ps(text: str) -> list[tuple[str, str]]:
    """(user, command name) pairs from `ps -ax -o user,comm`, header left out."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split(None, 1)
        if len(fields) == 2:
            rows.append((fields[0], fields[1].strip()))
    return rows


def parse_sysctl_conf(text: str) -> dict[str, str]:
    """`name=value` lines of /etc/sysctl.conf (the last one of a name wins, as rc.d/sysctl applies them)."""
    values = {}
    for line in text.splitlines():
        name, sep, value = line.split("#", 1)[0].partition("=")
        if sep and name.strip():
            values[name.strip()] = value.strip()
    return values


def parse_options(options: str) -> dict[str, str]:
    """fstab options "sw,ealgo=AES-XTS,keylen=256" -> {"sw": "", "ealgo": "AES-XTS", "keylen": "256"}."""
    parsed = {}
    for option in filter(None, options.split(",")):
        name, _, value = option.partition("=")
        parsed[name] = value
    return parsed


def parse_jail_conf_parameters(text: str) -> dict[str, str]:
    """`name = value;` parameters of a one-jail jail.conf, quotes removed (what jls prints them as)."""
    parameters = {}
    for line in text.splitlines():
        match = re.match(r'^\s*([A-Za-z0-9_.]+)\s*=\s*("([^"]*)"|[^;"]*)\s*;', line)
        if match:
            parameters[match.group(1)] = match.group(3) if match.group(3) is not None else match.group(2).strip()
    return parameters


def pf_rule_lines(text: str) -> list[str]:
    """The rule lines of pfctl output (-s rules, -s nat or -nv), whitespace-normalised, in order."""
    lines = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in PF_RULE_WORDS:
            lines.append(" ".join(words))
    return lines


def pf_rule_kind(line: str) -> str:
    """A rule line's kind: its first word, with scrub and match (both normalisation) together as "scrub"."""
    word = line.split(None, 1)[0]
    return "scrub" if word == "match" else word


def pf_tables(text: str) -> list[str]:
    """Names of the tables a pf.conf defines (`table <NAME> ...`)."""
    return re.findall(r"^\s*table\s+<([^>]+)>", text, flags=re.MULTILINE)


def parse_pf_table(text: str) -> list[str]:
    """Addresses of `pfctl -t NAME -T show` (one per line, indented)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


# --------------------------------------------------------------------------------- tor's control socket

def control_script(queries: list[str], socket: str = CONTROL_SOCKET, cookie: str = CONTROL_COOKIE,
                   timeout: int = CONTROL_TIMEOUT) -> str:
    """A /bin/sh script that authenticates with tor's cookie and sends `queries` over its control socket.

    The cookie is read into a shell variable and written by the printf builtin into nc's standard input, so it is
    never part of any process's arguments. Queries are fixed control-protocol commands (no quotes, no %).
    """
    for query in queries:
        if not re.fullmatch(r"[A-Za-z0-9/_. -]+", query):
            raise ValueError(f"not a plain control-protocol command: {query!r}")
    requests = "".join(f"{query}\\r\\n" for query in queries)
    # one line: it passes through the login shell of the server's user, which may be csh (no newlines in quotes)
    return (
        f"cookie=$(od -An -v -t x1 {shlex.quote(cookie)} | tr -d ' \\n') && [ -n \"$cookie\" ] || exit 3; "
        f"printf 'AUTHENTICATE %s\\r\\n{requests}QUIT\\r\\n' \"$cookie\" | "
        f"nc -w {int(timeout)} -U {shlex.quote(socket)}"
    )


@dataclass
class ControlReplies:
    """What tor answered: whether AUTHENTICATE was accepted, key=value pairs, and any error replies."""

    authenticated: bool = False
    values: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def parse_control_replies(text: str) -> ControlReplies:
    """Read tor's replies (control-spec: "250-key=value", "250 key=value", "250+key=" data ending in ".")."""
    lines = text.replace("\r\n", "\n").split("\n")
    replies = ControlReplies()
    if not lines or lines[0] != "250 OK":
        replies.errors.append(lines[0] if lines and lines[0] else "no answer to AUTHENTICATE")
        return replies
    replies.authenticated = True
    index = 1
    while index < len(lines):
        line = lines[index]
        index += 1
        match = re.match(r"^(\d{3})([ +-])(.*)$", line)
        if not match:
            continue
        code, kind, rest = match.groups()
        if code != "250":
            replies.errors.append(line)
            continue
        key, sep, value = rest.partition("=")
        if kind == "+":
            data = []
            while index < len(lines) and lines[index] != ".":
                data.append(lines[index][1:] if lines[index].startswith("..") else lines[index])
                index += 1
            index += 1
            replies.values[key] = "\n".join(data)
        elif sep:
            replies.values[key] = value
    return replies


# --------------------------------------------------------------------------------- the unencrypted disk

# Filesystems that live on the server's disks; every other mounted type (devfs, tmpfs, nullfs, procfs, fdescfs,
# network filesystems) holds nothing of the disk itself and is left out of searches.
DISK_FILESYSTEMS = ("ufs", "zfs", "msdosfs", "ext2fs")
# Device and process filesystems' mount points, left out even when not listed as mounted.
PSEUDO_PATHS = ("/dev", "/proc")
SEARCH_TIMEOUT = 1800


def unencrypted_exclusions(mounts: dict, settings) -> list[str]:
    """Paths a search of the unencrypted disk leaves out: the encrypted jail root (and all below it), the image
    (ciphertext), and the mount points of filesystems that are not on a disk."""
    excluded = {settings.jail_root.rstrip("/"), settings.image_path, *PSEUDO_PATHS}
    excluded.update(point for point, mount in mounts.items() if mount["type"] not in DISK_FILESYSTEMS)
    excluded.discard("/")
    return sorted(excluded)


def search_roots(excluded: list[str], list_dir) -> list[str]:
    """The paths to search recursively so that the whole tree from / is covered except `excluded` (and what lies
    below them): a directory holding an excluded path is split into its entries, level by level.

    `list_dir(path)` returns the absolute paths of a directory's entries that are not symbolic links (their
    targets are reached through their real paths).
    """
    excluded = {path.rstrip("/") for path in excluded}
    roots: list[str] = []

    def split(directory: str, depth: int) -> None:
        if depth > 64:
            raise RuntimeError(f"directory nesting too deep while splitting {directory}")
        for entry in sorted(list_dir(directory)):
            if entry in excluded:
                continue
            if any(path.startswith(entry + "/") for path in excluded):
                split(entry, depth + 1)
            else:
                roots.append(entry)

    split("/", 0)
    return roots


def find_named_files(host, paths, patterns, pruned=()):
    """Regular files under `paths` (the `pruned` trees left out) whose names match one of the shell `patterns`."""
    prune = " -o ".join(f"-path {shlex.quote(tree)}" for tree in pruned) or "-false"
    names = " -o ".join(f"-name {shlex.quote(pattern)}" for pattern in patterns)
    quoted = " ".join(shlex.quote(path) for path in paths)
    result = host.run(f"find {quoted} \\( {prune} \\) -prune -o -type f \\( {names} \\) -print")
    assert result.rc == 0, f"find could not search everything: {result.stderr}"
    return result.stdout.splitlines()


# GELI's metadata begins with this magic; a metadata backup (`geli backup`, `geli init -B`) is one copy of it, one
# sector of the provider long, whatever the file is called.
GELI_MAGIC = "GEOM::ELI"
SECTOR_SIZES = tuple(2 ** power for power in range(9, 17))  # 512 bytes to 64 KiB


def find_geli_metadata(host, paths, pruned=()):
    """Regular files under `paths` (the `pruned` trees left out) one sector long that begin with GELI's magic."""
    prune = " -o ".join(f"-path {shlex.quote(tree)}" for tree in pruned) or "-false"
    sizes = " -o ".join(f"-size {size}c" for size in SECTOR_SIZES)
    starts = f'for f; do [ "$(head -c {len(GELI_MAGIC)} "$f")" != {GELI_MAGIC} ] || echo "$f"; done'
    quoted = " ".join(shlex.quote(path) for path in paths)
    result = host.run(f"find {quoted} \\( {prune} \\) -prune -o -type f \\( {sizes} \\) "
                      f"-exec sh -c {shlex.quote(starts)} sh {{}} +")
    assert result.rc == 0 and not result.stderr, f"find could not search everything: {result.stderr}"
    return result.stdout.splitlines()


@dataclass
class SecretSearch:
    """Files holding a secret, and whether the search covered everything (grep exit 0 or 1, no errors)."""

    files: list[str]
    complete: bool
    errors: str


def search_for_secret(host, env_name, paths, timeout=SEARCH_TIMEOUT):
    """Search every file under `paths` for the secret held in this process's environment variable `env_name`;
    None when it is not set.

    The secret reaches grep on standard input (`-f /dev/stdin`), never on a command line, and no variable holding
    it outlives this function, so no traceback can show it.
    """
    if not os.environ.get(env_name):
        return None
    command = "grep -r -l -F -D skip -f /dev/stdin -- " + " ".join(shlex.quote(path) for path in paths)
    try:
        result = run_with_input(host, command, (os.environ[env_name] + "\n").encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        return SecretSearch([], False, f"no answer within {timeout} s")
    except RuntimeError as error:  # ssh failed; its message holds ssh's errors, never the input
        return SecretSearch([], False, str(error))
    errors = result.stderr.decode(errors="replace")
    return SecretSearch(result.stdout.decode(errors="replace").splitlines(),
                        result.returncode in (0, 1) and not errors, errors)


# --------------------------------------------------------------------------------- preconditions

def require_jail_running(host, settings):
    """Skip a check that needs the running jail when it is not running (test_jail_running reports that)."""
    if settings.jail_name not in Jails().process(host.check_output("jls -nq").splitlines()):
        pytest.skip(f"jail {settings.jail_name} is not running (test_jail_running fails)")


def require_jail_root_mounted(host, settings):
    """Skip a check of files in the jail root when the encrypted root is not mounted (test_vault reports that)."""
    if settings.jail_root not in MountPoints().process(host.check_output("mount -p").splitlines()):
        pytest.skip(f"nothing is mounted on {settings.jail_root} (test_jail_root_mounted_from_encrypted_device fails)")
