"""The checks' lark parsers, their tables built once per machine rather than once per deploy.

Building the LALR tables of the pf.conf grammar takes about a fifth of a second, in every deploy, before the
first host is planned; loading them takes a few milliseconds. Lark keeps them in a cache file and builds them
again whenever the grammar, its options, lark or Python changed. The file is a pickle, as lark writes it, so it
lives only in a directory of the operator's own that nobody else may write ($XDG_CACHE_HOME/torjail, by
default ~/.cache/torjail, mode 0700), never in a shared one such as /tmp; where there is no such directory the
parser is built every time, as before.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lark import Lark


def _cache_directory() -> Path | None:
    """The operator's own cache directory for torjail, made if missing; None when it is not safe to use."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = Path(base) / "torjail"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        status = directory.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid() or status.st_mode & 0o022:
        return None
    return directory


def lalr(name: str, grammar: str, **options) -> Lark:
    """A lalr Lark parser of `grammar`, its tables cached under `name`."""
    directory = _cache_directory()
    cache = str(directory / f"{name}.lark-cache") if directory else False
    return Lark(grammar, parser="lalr", cache=cache, **options)
