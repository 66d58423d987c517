"""A FreeBSD release's base.txz: downloaded once, checked against the release's MANIFEST, unpacked into a jail root.

The archive is public, so its cache on the unencrypted disk reveals nothing; it saves the download on every re-run.
A root is unpacked only while it lacks the marker written after a complete unpack, so an interrupted unpack is
redone, and a populated root (with the relay's keys in it) is never unpacked over.
"""

from __future__ import annotations

from shlex import quote

from pyinfra import host
from pyinfra.api import FactBase, QuoteString, StringCommand, operation

MARKER = ".torjail-base"


def _expected_sum(manifest: str) -> str:
    """Shell words printing the sha256 that a release MANIFEST lists for base.txz."""
    return f"awk '$1 == \"base.txz\" {{ print $2 }}' {quote(manifest)}"


class VerifiedArchive(FactBase):
    """
    Returns True when CACHE/base.txz exists and matches the sha256 listed in CACHE/MANIFEST.

    + cache: the cache directory of one release
    """

    def command(self, cache: str) -> StringCommand:
        archive, manifest = quote(f"{cache}/base.txz"), f"{cache}/MANIFEST"
        return StringCommand(
            f"if [ -f {archive} ] && [ -f {quote(manifest)} ] && "
            f'[ "$(sha256 -q {archive})" = "$({_expected_sum(manifest)})" ]; '
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


@operation()
def fetched(url: str, cache: str):
    """
    Download base.txz and MANIFEST of a release into a cache directory, keeping base.txz only if its sha256
    matches the MANIFEST.

    + url: the release directory, e.g. ``https://download.freebsd.org/releases/amd64/14.3-RELEASE``
    + cache: where to keep them on the host

    **Example:**

    .. code:: python

        release.fetched("https://download.freebsd.org/releases/amd64/14.3-RELEASE", "/var/cache/torjail/14.3")
    """
    if host.get_fact(VerifiedArchive, cache=cache):
        host.noop(f"{cache}/base.txz is already downloaded and verified")
        return
    archive, part, manifest = f"{cache}/base.txz", f"{cache}/base.txz.part", f"{cache}/MANIFEST"
    yield StringCommand("mkdir", "-p", QuoteString(cache))
    yield StringCommand("fetch", "-q", "-o", QuoteString(manifest), QuoteString(f"{url}/MANIFEST"))
    yield StringCommand("fetch", "-q", "-o", QuoteString(part), QuoteString(f"{url}/base.txz"))
    mismatch = quote(f"{url}/base.txz does not match the sha256 in its MANIFEST")
    yield StringCommand(
        f"expected=$({_expected_sum(manifest)}); actual=$(sha256 -q {quote(part)}); "
        f'if [ -n "$expected" ] && [ "$expected" = "$actual" ]; then mv -f {quote(part)} {quote(archive)}; '
        f"else rm -f {quote(part)}; echo {mismatch} >&2; exit 1; fi",
    )


@operation()
def unpacked(cache: str, root: str, release: str):
    """
    Unpack the cached base.txz into a jail root that has not been completed yet, then write the marker.

    + cache: the cache directory holding base.txz
    + root: the jail root (mounted)
    + release: written into the marker, e.g. ``14.3-RELEASE``

    **Example:**

    .. code:: python

        release.unpacked("/var/cache/torjail/14.3", "/var/jails/tor", "14.3-RELEASE")
    """
    if host.get_fact(RootPopulated, root=root):
        host.noop(f"{root} is already populated")
        return
    marker = f"{root}/{MARKER}"
    yield StringCommand(
        "test", "!", "-e", QuoteString(marker), "&&", "test", "!", "-L", QuoteString(marker), "&&",
        "tar", "-x", "-f", QuoteString(f"{cache}/base.txz"), "-C", QuoteString(root), "--unlink", "&&",
        "echo", QuoteString(release), ">", QuoteString(marker),
    )
