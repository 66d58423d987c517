"""The lab's freebsd-update server: the update metadata of the lab's release, served by the lab's mirror.

The layout is that of update.FreeBSD.org, under the mirror's root: `14.3-RELEASE/amd64/` holds pub.ssl (the
server's public key, whose sha256 is the KeyPrint of /etc/freebsd-update.conf), latest.ssl (the tag
`freebsd-update|amd64|14.3-RELEASE|PATCHNUM|TINDEXHASH|EOLTIME`), t/TINDEXHASH (the metadata index: which
metadata file is INDEX-OLD, INDEX-NEW, INDEX-ALL), m/HASH.gz (the metadata files) and f/HASH.gz (the files of
the newest patch level). Metadata lines are FreeBSD's:
`COMPONENT|SUBCOMPONENT|PATH|TYPE|UID|GID|PERM|FLAGS|SHA256|LINK`.

What it publishes: the release files of lab.freebsd.release (/bin/freebsd-version, /lib/libcrypto.so.30,
/boot/GENERIC/kernel) at the installed patch level (INDEX-OLD) and at version.UPDATE_PATCH (INDEX-NEW).
Unlike FreeBSD's, latest.ssl is the tag itself, not an RSA signature of it; the transport is https with the lab's
CA (fetch(1) checks it), and the client checks pub.ssl against KeyPrint as FreeBSD's does.
"""

import gzip
import hashlib
import os

from lab.freebsd import release
from lab.freebsd.userland import version

PUBLIC_KEY = ("-----BEGIN PUBLIC KEY-----\n"
              "bGFiIGZyZWVic2QtdXBkYXRlIHNlcnZlciBrZXk6IHRoZSB0YWcgaXMgbm90IHNpZ25lZCBpbiB0aGUgbGFi\n"
              "-----END PUBLIC KEY-----\n").encode()
KEYPRINT = hashlib.sha256(PUBLIC_KEY).hexdigest()
FETCH_DIR = f"{version.RELEASE}/{version.MACHINE}"

CONF = """\
# The lab's /etc/freebsd-update.conf: FreeBSD's shipped file with the lab's update server as ServerName and
# the lab server's key as KeyPrint (FreeBSD ships update.FreeBSD.org and the FreeBSD key's hash).

# Trust an RSA key with SHA256 hash of
KeyPrint {keyprint}

# Server or server pool from which to fetch updates.
ServerName {server}

# Components of the base system which should be kept updated.
Components src world kernel

# Paths which start with anything matching an entry in an IgnorePaths
# statement will be ignored.
IgnorePaths

# Paths which start with anything matching an entry in an IDSIgnorePaths
# statement will be ignored by "freebsd-update IDS".
IDSIgnorePaths /usr/share/man/cat
IDSIgnorePaths /usr/share/man/whatis
IDSIgnorePaths /var/db/locate.database
IDSIgnorePaths /var/log

# Paths which start with anything matching an entry in an UpdateIfUnmodified
# statement will only be updated if the contents of the file have not been
# modified by the user (unless changes are merged; see below).
UpdateIfUnmodified /etc/ /var/ /root/ /.cshrc /.profile

# When upgrading to a new FreeBSD release, files which match MergeChanges
# will have any local changes merged into the version from the new release.
MergeChanges /etc/ /boot/device.hints

### Default configuration options:
# WorkDir /var/db/freebsd-update
# MailTo root
# AllowAdd yes
# AllowDelete yes
# KeepModifiedMetadata yes
# StrictComponents no
# BackupKernel yes
# BackupKernelDir /boot/kernel.old
# BackupKernelSymbolFiles no
# CreateBootEnv yes
"""


def server_name(mirror_url):
    """ServerName for a mirror URL: host[:port]."""
    return mirror_url.split("://", 1)[1].rstrip("/")


def conf_text(mirror_url):
    return CONF.format(keyprint=KEYPRINT, server=server_name(mirror_url))


def _index_path(path):
    """Kernel files live under /boot/KERNCONF/ in the metadata; freebsd-update maps them to the running kernel."""
    if path.startswith("/boot/kernel/"):
        return f"/boot/{version.KERNEL_IDENT}/" + path[len("/boot/kernel/"):]
    return path


def index_lines(patch):
    lines = []
    for path, (component, content, mode) in release.files(patch).items():
        digest = hashlib.sha256(content).hexdigest()
        lines.append(f"{component}|{_index_path(path)}|f|0|0|{mode:04o}|0|{digest}|")
    return sorted(lines)


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path, "rb") as handle:
            if handle.read() == data:
                return
    except OSError:
        pass
    with open(path + ".new", "wb") as handle:
        handle.write(data)
    os.replace(path + ".new", path)


def _store(directory, sub, data):
    """Store data gzipped as SUB/SHA256.gz (the hash of the uncompressed data); return the hash."""
    digest = hashlib.sha256(data).hexdigest()
    _write(os.path.join(directory, sub, digest + ".gz"), gzip.compress(data, mtime=0))
    return digest


def publish(mirror_dir):
    """Write the update metadata of the lab's release under mirror_dir (idempotent)."""
    directory = os.path.join(mirror_dir, FETCH_DIR)
    old = "".join(line + "\n" for line in index_lines(version.PATCH)).encode()
    new = "".join(line + "\n" for line in index_lines(version.UPDATE_PATCH)).encode()
    hashes = {"INDEX-OLD": _store(directory, "m", old), "INDEX-NEW": _store(directory, "m", new),
              "INDEX-ALL": _store(directory, "m", new)}
    for _, content, _ in release.files(version.UPDATE_PATCH).values():
        _store(directory, "f", content)
    tindex = "".join(f"{name}|{digest}\n" for name, digest in sorted(hashes.items())).encode()
    tindex_hash = hashlib.sha256(tindex).hexdigest()
    _write(os.path.join(directory, "t", tindex_hash), tindex)
    _write(os.path.join(directory, "pub.ssl"), PUBLIC_KEY)
    tag = (f"freebsd-update|{version.MACHINE}|{version.RELEASE}|{release.patch_number(version.UPDATE_PATCH)}|"
           f"{tindex_hash}|{version.UPDATE_EOL}\n")
    _write(os.path.join(directory, "latest.ssl"), tag.encode())
    return directory
