"""A FreeBSD release's base.txz: downloaded once, checked against a pinned sha256, unpacked into a jail root.

The sha256 never comes from the mirror that serves the archive (its MANIFEST could be forged along with it): the
caller passes the value the operator pinned from the release's signed checksum file. The archive is public, so
its cache on the unencrypted disk reveals nothing; it saves the download on every re-run. A root is unpacked only
while it lacks the marker written after a complete unpack, so an interrupted unpack is redone, and a populated
root (with the relay's keys in it) is never unpacked over.
"""

from __future__ import annotations

from shlex import quote

from pyinfra import host
from pyinfra.api import FactBase, QuoteString, StringCommand, operation

from torjail.freebsd.jail import while_stopped
from torjail.freebsd.jailfs import links_out_refused
from torjail.freebsd import readings, shell

MARKER = ".torjail-base"
# Unpacks take turns: a deploy cut off mid-unpack leaves its tar running on the server (sshd lets a command run
# on), and the re-run's unpack waits for it, then finds the marker it wrote instead of unpacking over it.
UNPACK_LOCK = "/var/run/torjail-unpack.lock"
UNPACK_WAIT_SECONDS = 900
# What a newer release's base.txz must not replace in a populated root: its users and groups (packages add their
# own, tor's _tor among them), /var (the package database, tor's data) and root's home.
KEPT_ON_UPGRADE = ("./var", "./root", "./etc/master.passwd", "./etc/passwd", "./etc/group", "./etc/pwd.db",
                   "./etc/spwd.db")


class VerifiedArchive(FactBase):
    """
    Returns True when CACHE/base.txz exists and its sha256 is SHA256.

    + cache: the cache directory of one release
    + sha256: the pinned sha256 of base.txz
    """

    def command(self, cache: str, sha256: str) -> StringCommand:
        archive = quote(f"{cache}/base.txz")
        return StringCommand(
            f"if [ -f {archive} ] && [ \"$(sha256 -q {archive})\" = {quote(sha256)} ]; "
            "then echo verified; else echo missing; fi",
        )

    @staticmethod
    def default():
        return False

    def process(self, output: list[str]):
        return output == ["verified"]


class RootPopulated(FactBase):
    """
    Returns the release unpacked in a jail root (the marker's content), or None when it was never completed.

    + root: the jail root on the host
    """

    def command(self, root: str) -> StringCommand:
        return StringCommand("cat", QuoteString(f"{root}/{MARKER}"), "2>/dev/null", "||", "true")

    @staticmethod
    def default():
        return None

    def process(self, output: list[str]):
        return output[0].strip() if output and output[0].strip() else None


@readings.scoped(lambda url, cache, sha256: readings.touches(readings.path_scope(cache)))
@operation()
def fetched(url: str, cache: str, sha256: str):
    """
    Download base.txz of a release into a cache directory, keeping it only if its sha256 is the pinned one.

    + url: the release directory, e.g. ``https://download.freebsd.org/releases/amd64/14.3-RELEASE``
    + cache: where to keep it on the host
    + sha256: the sha256 of base.txz from the release's signed checksum file (not from the mirror)

    **Example:**

    .. code:: python

        release.fetched("https://download.freebsd.org/releases/amd64/14.3-RELEASE", "/var/cache/torjail/14.3",
                        sha256="e38b5cf7...")
    """
    if readings.fact(VerifiedArchive, cache=cache, sha256=sha256):
        host.noop(f"{cache}/base.txz is already downloaded and verified")
        return
    archive, part = f"{cache}/base.txz", f"{cache}/base.txz.part"
    mismatch = quote(f"{url}/base.txz does not match the pinned sha256 (setting 'jail_release_sha256')")
    yield from shell.joined([
        StringCommand("mkdir", "-p", QuoteString(cache)),
        StringCommand("fetch", "-q", "-o", QuoteString(part), QuoteString(f"{url}/base.txz")),
        StringCommand(
            f"if [ \"$(sha256 -q {quote(part)})\" = {quote(sha256)} ]; then mv -f {quote(part)} {quote(archive)}; "
            f"else rm -f {quote(part)}; echo {mismatch} >&2; exit 1; fi",
        ),
    ])


@operation()
def unpacked(cache: str, root: str, release: str):
    """
    Unpack the cached base.txz into a jail root that has not been completed yet, then write the marker; one
    unpack at a time (lockf(1)): a root another unpack completed meanwhile with this release is left as it is,
    any other marker (or a symbolic link in its place) fails the operation, and nothing is unpacked over it.

    + cache: the cache directory holding base.txz
    + root: the jail root (mounted)
    + release: written into the marker, e.g. ``14.3-RELEASE``

    **Example:**

    .. code:: python

        release.unpacked("/var/cache/torjail/14.3", "/var/jails/tor", "14.3-RELEASE")
    """
    if readings.fact(RootPopulated, root=root):
        host.noop(f"{root} is already populated")
        return
    marker = quote(f"{root}/{MARKER}")
    script = (f"if [ -L {marker} ]; then exit 1; fi; "
              f"if [ -e {marker} ]; then [ \"$(cat {marker})\" = {quote(release)} ]; exit; fi; "
              f"tar -x -f {quote(f'{cache}/base.txz')} -C {quote(root)} --unlink && echo {quote(release)} > {marker}")
    yield StringCommand("lockf", "-k", "-t", str(UNPACK_WAIT_SECONDS), UNPACK_LOCK, "sh", "-c", QuoteString(script))


@operation()
def upgraded(cache: str, root: str, release: str, jail_name: str, config: str, device: str, running: bool):
    """
    Unpack a newer release's cached base.txz over a populated jail root, keeping what KEPT_ON_UPGRADE names, then
    write the new release into the marker. A running jail is stopped for it and started again
    (``jail.while_stopped``); either way a symlink in the root that leads to a directory outside it stops the
    unpack before anything is written.

    + cache: the cache directory holding the new release's base.txz
    + root: the jail root
    + release: the new release, e.g. ``14.3-RELEASE``
    + jail_name, config, device: the jail, its jail.conf(5) file, the device its ``mount`` parameter mounts
    + running: whether the jail runs (otherwise its root is mounted on the host already)

    **Example:**

    .. code:: python

        release.upgraded("/var/cache/torjail/14.3-RELEASE-amd64", "/var/jails/tor", "14.3-RELEASE", "tor",
                         "/etc/jail.conf.d/tor.conf", "/dev/md10.eli", running=True)
    """
    current = readings.fact(RootPopulated, root=root)
    if current == release:
        host.noop(f"{root} is already {release}")
        return
    excluded = " ".join(f"--exclude {quote(path)}" for path in KEPT_ON_UPGRADE)
    marker = quote(f"{root}/{MARKER}")
    body = (f"{{ {links_out_refused(root)}; }} && tar -x -f {quote(f'{cache}/base.txz')} -C {quote(root)} --unlink "
            f"{excluded} && rm -f {marker} && echo {quote(release)} > {marker}")
    yield StringCommand(while_stopped(jail_name, config, root, device, body) if running else body)
