"""Where the lab keeps the GNU programs that the BSD userland wraps (off PATH, see lab/rootfs.py)."""

import os

GNU_BIN = "/usr/libexec/lab/bin"


def gnu(name):
    return os.path.join(GNU_BIN, name)


def exec_gnu(name, args):
    """Replace this process with the GNU program `name` run with `args` (never returns)."""
    os.execv(gnu(name), [name] + list(args))
