"""A file's new content staged beside the live one: the staging name, the content's sha1 and the diff shown.

A new file goes first to a staging path next to the live one and moves into place in one rename, so a reader
never sees half a file; the sha1 is what pyinfra's Sha1File fact compares, and `--dry --diff` shows the diff
against the live file as pyinfra's files.put shows it.
"""

from __future__ import annotations

import hashlib

from pyinfra import host, logger
from pyinfra.facts.files import FileContents
from pyinfra.operations.util.files import generate_color_diff
from . import readings

STAGING_SUFFIX = ".torjail-new"


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
