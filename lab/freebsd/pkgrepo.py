"""The lab's package repository and package database: what pkg(8) can install and what a root has installed.

Nothing is fetched: the repository configuration (/etc/pkg/FreeBSD.conf, /usr/local/etc/pkg/repos/*.conf) is
read only to report the branch (`pkg -vv`). The catalogue holds `pkg` itself and `tor`, the only real
package: installing it copies the lab's tor binary (Debian's, kept off PATH under /usr/libexec/lab/bin) and the
shared libraries it needs into the target root, behind /usr/local/bin/tor, a wrapper that adds on tor's command
line what a never-published relay needs to run in the lab (the deployed torrc stays as in production).
The database of a root is /var/db/pkg/lab-packages.json in that root.

The repository offers tor at the version of the lab's tor binary (`tor --version`, e.g. 0.4.8.16) unless the
lab host publishes another: a file /usr/libexec/lab/pkgrepo/tor holding a version (say 0.4.8.16_1, a new
PORTREVISION of the same binary) makes that the repository's tor, so `pkg upgrade` finds an upgrade; only
the package's version changes, the binary installed stays the lab's tor.
"""

import datetime
import glob
import json
import os
import re
import shutil
import subprocess

from lab.freebsd import hosttools

ABI = "FreeBSD:14:amd64"
PKG_VERSION = "1.21.3"
DB_FILE = "var/db/pkg/lab-packages.json"
FILES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pkgfiles")
LOADERS = ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1")
TOR_REAL = "/usr/local/libexec/tor/tor"
TOR_LAB_OPTIONS = ("--PublishServerDescriptor", "0", "--AssumeReachable", "1", "--CountPrivateBandwidth", "1")
TOR_UID = 256
PUBLISHED_DIR = "/usr/libexec/lab/pkgrepo"   # lab-side switch: NAME holds the version the repository offers
PUBLISHABLE = ("tor",)

CATALOGUE = {
    "pkg": {"origin": "ports-mgmt/pkg", "comment": "Package manager", "www": "https://github.com/freebsd/pkg",
            "maintainer": "pkg@FreeBSD.org", "categories": "ports-mgmt", "licenses": "BSD2CLAUSE",
            "flatsize": 36634816},
    "tor": {"origin": "security/tor", "comment": "Anonymizing overlay network for TCP",
            "www": "https://www.torproject.org/", "maintainer": "neel@neelc.org", "categories": "net security",
            "licenses": "BSD3CLAUSE", "flatsize": 10350592,
            "message": "To enable the tor daemon, add tor_enable=\"YES\" to /etc/rc.conf and edit\n"
                       "/usr/local/etc/tor/torrc (a sample is in /usr/local/etc/tor/torrc.sample)."},
}


class PackageError(Exception):
    pass


# ------------------------------------------------------------------------------------------ repositories

_REPO_START = re.compile(r"([A-Za-z0-9_-]+)\s*:\s*\{")
_REPO_FIELD = re.compile(r"^\s*([A-Za-z_]+)\s*:\s*(\"[^\"]*\"|[^,\n]+)\s*,?\s*$", re.M)


def repositories(root="/"):
    """Repository definitions in pkg's reading order (later files override fields of earlier ones)."""
    files = [os.path.join(root, "etc/pkg/FreeBSD.conf")]
    files += sorted(glob.glob(os.path.join(root, "usr/local/etc/pkg/repos/*.conf")))
    repos = {}
    for path in files:
        try:
            with open(path) as handle:
                text = re.sub(r"#[^\n]*", "", handle.read())
        except OSError:
            continue
        for name, body in _repo_blocks(text):
            repo = repos.setdefault(name, {})
            for key, value in _REPO_FIELD.findall(body):
                repo[key] = value.strip().strip('"')
    return {name: repo for name, repo in repos.items() if repo.get("url")}


def _repo_blocks(text):
    """(name, body) of each `NAME: { ... }` block; braces inside quoted values (${ABI}) do not count."""
    position = 0
    while True:
        match = _REPO_START.search(text, position)
        if not match:
            return
        depth, quoted, index = 1, False, match.end()
        while index < len(text) and depth:
            char = text[index]
            if char == '"':
                quoted = not quoted
            elif not quoted and char in "{}":
                depth += 1 if char == "{" else -1
            index += 1
        yield match.group(1), text[match.end():index - 1]
        position = index


def expand(url):
    return url.replace("${ABI}", ABI).replace("$ABI", ABI)


def enabled(repo):
    return repo.get("enabled", "yes").lower() in ("yes", "true", "1", "on")


# ------------------------------------------------------------------------------------------ database

def read_db(root):
    try:
        with open(os.path.join(root, DB_FILE)) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def write_db(root, db):
    path = os.path.join(root, DB_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(db, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def published_version(name):
    """The version the lab host publishes for a package (see the module docstring), or None."""
    if name not in PUBLISHABLE:
        return None
    try:
        with open(os.path.join(PUBLISHED_DIR, name)) as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _version_parts(text):
    """pkg's ordering of a version VERSION[_REVISION][,EPOCH]: epoch, then the dotted parts, then revision."""
    epoch = 0
    if "," in text:
        text, _, tail = text.rpartition(",")
        epoch = int(tail) if tail.isdigit() else 0
    revision = 0
    if "_" in text:
        text, _, tail = text.rpartition("_")
        revision = int(tail) if tail.isdigit() else 0
    parts = []
    for piece in re.split(r"[.+]", text):
        for number, letters in re.findall(r"(\d*)(\D*)", piece):
            if number or letters:
                parts.append((int(number) if number else -1, letters))
    return epoch, parts, revision


def version_cmp(left, right):
    """-1, 0 or 1 as pkg-version(8) orders two versions."""
    a, b = _version_parts(left), _version_parts(right)
    return (a > b) - (a < b)


def available_version(name):
    published = published_version(name)
    if published:
        return published
    if name == "pkg":
        return PKG_VERSION
    if name == "tor":
        output = subprocess.run([hosttools.tool("tor"), "--version"], capture_output=True, text=True).stdout
        match = re.search(r"Tor version ([0-9.]+?)\.?\s", output + " ")
        if match:
            return match.group(1)
    return None


def record(root, name, version, files, repository="FreeBSD"):
    db = read_db(root)
    db[name] = dict(CATALOGUE[name], name=name, version=version, files=files, repository=repository,
                    installed=int(datetime.datetime.now(datetime.timezone.utc).timestamp()))
    db[name].pop("message", None)
    write_db(root, db)


# ------------------------------------------------------------------------------------------ installing

def _place(root, path, content=None, source=None, mode=0o644, uid=0, gid=0):
    """Write a package file as pkg does: into a temporary name, then renamed over the old one (a running
    program, tor during an upgrade, keeps its old file)."""
    target = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = os.path.join(os.path.dirname(target), "." + os.path.basename(target) + ".pkgtemp")
    if source:
        shutil.copyfile(source, tmp)
    else:
        with open(tmp, "w") as handle:
            handle.write(content)
    os.chmod(tmp, mode)
    os.chown(tmp, uid, gid)
    os.replace(tmp, target)
    return path


def shared_libraries(binary):
    """Absolute paths of the shared libraries (and the loader) a binary needs, as the dynamic loader lists them."""
    loader = next((l for l in LOADERS if os.path.exists(l)), None)
    if loader is None:
        raise PackageError("no dynamic loader found")
    output = subprocess.run([loader, "--list", binary], capture_output=True, text=True, check=True).stdout
    libraries = re.findall(r"=>\s*(/\S+)", output) + [loader]
    return sorted(set(libraries))


def copy_with_libraries(binary, root, destination):
    """Copy a Linux program into root at destination, with every library it needs at the same path."""
    placed = [_place(root, destination, source=binary, mode=0o755)]
    for library in shared_libraries(binary):
        target = os.path.join(root, library.lstrip("/"))
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.realpath(library), target)
            os.chmod(target, 0o755)
    return placed


def _add_account(root, name, uid, gid, gecos, home, shell):
    """Add a user and its group to the root's passwd/group files (and master.passwd when it has one)."""
    lines = {
        "etc/group": f"{name}:*:{gid}:",
        "etc/passwd": f"{name}:*:{uid}:{gid}:{gecos}:{home}:{shell}",
        "etc/master.passwd": f"{name}:*:{uid}:{gid}::0:0:{gecos}:{home}:{shell}",
    }
    messages = []
    for relative, line in lines.items():
        path = os.path.join(root, relative)
        if relative == "etc/master.passwd" and not os.path.exists(path):
            continue
        existing = open(path).read() if os.path.exists(path) else ""
        if any(entry.split(":")[0] == name for entry in existing.splitlines()):
            if relative == "etc/group":
                messages.append(f"Using existing group '{name}'.")
            elif relative == "etc/passwd":
                messages.append(f"Using existing user '{name}'.")
            continue
        with open(path, "a") as handle:
            handle.write(("" if not existing or existing.endswith("\n") else "\n") + line + "\n")
        if relative == "etc/group":
            messages.append(f"Creating group '{name}' with gid '{gid}'")
        elif relative == "etc/passwd":
            messages.append(f"Creating user '{name}' with uid '{uid}'")
    return messages


def install_tor(root):
    """Install the tor package into root; return (files, messages printed while installing)."""
    messages = ["===> Creating groups"]
    account = _add_account(root, "_tor", TOR_UID, TOR_UID, "Tor Anonymizing Router", "/var/db/tor",
                           "/usr/sbin/nologin")
    messages += [m for m in account if "group" in m] + ["===> Creating users"] + [m for m in account if "user" in m]
    files = copy_with_libraries(hosttools.tool("tor"), root, TOR_REAL)
    wrapper = ("#!/bin/sh\n"
               "# tor as packaged for the lab: a relay that never publishes its descriptor (see the lab README).\n"
               f"exec {TOR_REAL} \"$@\" {' '.join(TOR_LAB_OPTIONS)}\n")
    files.append(_place(root, "/usr/local/bin/tor", wrapper, mode=0o755))
    for relative, mode in (("usr/local/etc/tor/torrc.sample", 0o644), ("usr/local/etc/rc.d/tor", 0o755)):
        with open(os.path.join(FILES_DIR, "tor", os.path.basename(relative))) as handle:
            files.append(_place(root, "/" + relative, handle.read(), mode=mode))
    for directory in ("var/db/tor", "var/run/tor", "var/log/tor"):
        path = os.path.join(root, directory)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o700)
        os.chown(path, TOR_UID, TOR_UID)
    return files, messages


def install_pkg(root, launcher):
    """Bootstrap: the real pkg(8) lands at /usr/local/sbin/pkg (here: the same emulated command)."""
    with open(launcher) as handle:
        return [_place(root, "/usr/local/sbin/pkg", handle.read(), mode=0o755)]


def remove_files(root, files):
    for path in files:
        try:
            os.unlink(os.path.join(root, path.lstrip("/")))
        except FileNotFoundError:
            pass
