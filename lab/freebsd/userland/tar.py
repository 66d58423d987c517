"""tar(1) of FreeBSD (bsdtar) where it differs from GNU tar for the lab: -U (--unlink) on extraction.

bsdtar -U unlinks an existing file before creating one in its place, but leaves an existing directory alone
(libarchive's ARCHIVE_EXTRACT_UNLINK skips directories), so extracting over a partly extracted tree works. GNU
tar's -U (--unlink-first) tries to remove existing directories too and fails on every non-empty one. GNU tar
without -U already replaces existing files and keeps existing directories, which is what bsdtar -U does: the
flag is dropped and the rest goes to GNU tar unchanged.
"""

from .gnu import exec_gnu


def _without_unlink(args):
    kept = []
    for index, arg in enumerate(args):
        if arg == "--":
            return kept + args[index:]
        if arg in ("-U", "--unlink"):
            continue
        if arg.startswith("-") and not arg.startswith("--") and arg[1:].isalpha() and "U" in arg:
            arg = arg.replace("U", "")
            if arg == "-":
                continue
        kept.append(arg)
    return kept


def main(argv):
    exec_gnu("tar", _without_unlink(list(argv[1:])))
