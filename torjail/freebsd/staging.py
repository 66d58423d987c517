"""A file's new content staged beside the live one: the staging name, the content's sha1, the diff shown, and the
content sent inside the command that writes it.

A new file goes first to a staging path next to the live one and moves into place in one rename, so a reader
never sees half a file; the sha1 is what pyinfra's Sha1File fact compares, and `--dry --diff` shows the diff
against the live file as pyinfra's files.put shows it. A configuration file of a few kilobytes goes to the server
inside the shell command that writes it (`printf %s '...' | ...`): no upload, whose round trip would cost as much as
the command's, and no copy in the host's /tmp on its unencrypted disk.
"""

from __future__ import annotations

import hashlib
from shlex import quote

from pyinfra import host, logger
from pyinfra.api import QuoteString, StringCommand
from pyinfra.facts.files import FileContents
from pyinfra.operations.util.files import generate_color_diff
from . import readings

STAGING_SUFFIX = ".torjail-new"
# Content up to this size (as shell-quoted, twice: once in the command, once more by pyinfra's `sh -c '...'` around
# it) is sent inline; larger content is uploaded. One argument of a command line may not be longer than 128 KiB on
# Linux (the lab), and a whole command line 256 KiB on FreeBSD.
INLINE_LIMIT = 32 * 1024


def inline(content: str | None) -> StringCommand | None:
    """`printf %s CONTENT`, to pipe into the command that writes it, or None when the content must be uploaded.

    The content is then part of the command's text, which pyinfra shows at high verbosity: configuration only,
    never a secret (keys and passphrases go on standard input, as torjail.procedures.torkeys sends them)."""
    if content is None or len(quote(quote(content))) > INLINE_LIMIT:
        return None
    return StringCommand("printf", "%s", QuoteString(content))


def content_sha1(content: str) -> str:
    """The sha1 of `content` as pyinfra's Sha1File fact reports it for a file holding it."""
    return hashlib.sha1(content.encode()).hexdigest()


def show_diff(dest: str, content: str) -> None:
    """Log the diff from the live file at `dest` to `content`, as pyinfra's files.put does with --diff."""
    current = readings.fact(FileContents, path=dest) or []
    host.log(f"Will {'modify' if current else 'create'} {dest}", logger.info)
    for line in generate_color_diff([line + "\n" for line in current], content.splitlines(keepends=True)):
        logger.info("  %s", line)
    logger.info("")
