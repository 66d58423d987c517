"""Writing a file into a lab root at its FreeBSD path, as the root builder and the release files both do: the
content goes to a temporary name beside the target, gets its mode, and is renamed over the old file, so a reader
sees either the old file or the whole new one."""

import os


def install(root, path, content, mode):
    """Put content (bytes) at `path` under root with `mode`, creating the parent directories."""
    target = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = target + ".lab-new"
    with open(tmp, "wb") as handle:
        handle.write(content)
    os.chmod(tmp, mode)
    os.replace(tmp, target)
