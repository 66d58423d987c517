"""Writing into a jail root so that the jail cannot redirect the write, and never with the jail's own binaries.

The jail runs internet-facing software, so everything under its root may have been planted by it: a symbolic
link where the host is about to write (the jail's /etc pointing at the host's /etc), or a booby-trapped binary.
While the jail runs, the host writes through a shell inside it (`jexec`): a planted link then resolves inside the
jail. While it does not run, nothing in it can move between a check and a write, so the host's own /bin/sh writes
under the root, in one command that first refuses when any part of the path below the root is a symbolic link.
Neither way runs a binary of the jail as host root (`chroot ROOT /bin/sh` would run the jail's /bin/sh).
A file of the right content whose mode or owner differs gets a chmod or chown, written the same way (chmod and
chown follow links: on the host they would follow one the jail planted).
"""

from __future__ import annotations

import posixpath
from io import StringIO
from shlex import quote

from pyinfra import host, logger
from pyinfra.api import FactBase, FileUploadCommand, QuoteString, StringCommand, operation
from pyinfra.facts.files import Directory, Sha1File

from .staging import STAGING_SUFFIX, content_sha1, inline, show_diff
from . import readings


def components(root: str, path: str) -> list[str]:
    """Every host path from the first directory below `root` down to `root` + `path` (an absolute jail path)."""
    parts = [part for part in path.split("/") if part]
    return [posixpath.join(root.rstrip("/") or "/", *parts[:index]) for index in range(1, len(parts) + 1)]


def refuse_links(root: str, paths) -> str:
    """A shell snippet that exits 1 when any part below `root` of the jail paths is a symbolic link."""
    checked = dict.fromkeys(part for path in paths for part in components(root, path))
    if not checked:
        return ""
    return (f"for p in {' '.join(quote(part) for part in checked)}; do if [ -L \"$p\" ]; then "
            f"echo \"$p is a symbolic link in the jail root {root}: not written through\" >&2; exit 1; fi; done; ")


def shell(jail_name: str, root: str, running: bool, script: str, guarded=()) -> list:
    """The words of a command running `script` for a jail: its paths are jail paths behind "$R" ("" inside the
    running jail, the root on the host); on the host, `guarded` jail paths are first refused when redirected."""
    if running:
        return ["jexec", QuoteString(jail_name), "/bin/sh", "-c", QuoteString("R=; " + script)]
    return ["/bin/sh", "-c", QuoteString(f"R={quote(root.rstrip('/'))}; " + refuse_links(root, guarded) + script)]


def _owner(user, group):
    return f"{user or ''}{':' + group if group else ''}"


class FileAttributes(FactBase):
    """
    Returns the mode (octal digits) and the owner and group (numbers) of a regular file; None when there is no
    regular file there (nothing, a directory, a symbolic link).

    pyinfra's File fact names the owner as the host's passwd names it (FreeBSD's ``stat -f %Su``): a jail's files
    belong to the jail's users, whom the host does not know or knows by other names, so their owners compare as
    numbers.

    .. code:: python

        {"mode": "600", "user": "256", "group": "256"}
    """

    requires_command = "stat"

    def command(self, path):
        return f"if [ -f {quote(path)} ] && [ ! -L {quote(path)} ]; then stat -f '%Lp %u %g' {quote(path)}; fi"

    @staticmethod
    def reading_scopes(path):
        return [readings.path_scope(path)]

    def process(self, output):
        words = " ".join(output).split()
        if len(words) != 3:
            return None
        return dict(zip(("mode", "user", "group"), words))


def attribute_fixes(found, mode, user, group) -> list[str] | None:
    """The chown and chmod (shell text on the jail path "$R"PATH) that give a file described by FileAttributes its
    wanted mode and owner; None when they match (user or group None: not compared)."""
    if not found:
        return None
    steps = []
    if (user and found["user"] != str(user)) or (group and found["group"] != str(group)):
        steps.append(f"chown {quote(_owner(user, group))}")
    if mode and int(found["mode"], 8) != int(str(mode), 8):
        steps.append(f"chmod {quote(str(mode))}")
    return steps or None


def _put_touches(jail_name, root, running, path, mode, content, copy_of, user, group, check, owed):
    """The file, its staging file and the owed marker, under the jail root; with a check, everything: the check
    is a program of the jail's, run as it runs."""
    if check and running:
        return None
    base = root.rstrip("/")
    return readings.touches(*[readings.path_scope(base + each)
                              for each in (path, path + STAGING_SUFFIX, owed) if each])


@readings.scoped(_put_touches)
@operation()
def put(jail_name: str, root: str, running: bool, path: str, mode: str = "644", content: str | None = None,
        copy_of: str | None = None, user: str | None = None, group: str | None = None, check: list | None = None,
        owed: str | None = None):
    """
    Place a file in a jail, from content or a copy of a host file, through a path the jail cannot redirect.

    + jail_name, root, running: the jail, its root on the host, whether it runs
    + path: the file inside the jail (absolute)
    + mode, user, group: of the placed file (user and group as numbers: the host may not know the jail's users); a
      file of the right content with another mode or owner gets a chmod or chown, as pyinfra's files.put gives it
    + content: the wanted content (sent inside the command that writes it, up to ``staging.INLINE_LIMIT``; uploaded
      first when larger: never a secret); or copy_of: a host file whose bytes are wanted
    + check: a command run inside the running jail on the staging file (``{path}``) before it moves into place;
      skipped while the jail does not run (the jail's binaries never run outside it)
    + owed: a jail path created just before the file moves into place (as torjail.procedures.files.checked does)

    **Example:**

    .. code:: python

        jailfs.put("tor", "/var/jails/tor", True, "/etc/rc.conf", content=text)
    """
    dest = root.rstrip("/") + path
    wanted = content_sha1(content) if content is not None else readings.fact(Sha1File, path=copy_of)
    if wanted is not None and readings.fact(Sha1File, path=dest) == wanted:
        found = readings.fact(FileAttributes, path=dest)
        fixes = attribute_fixes(found, mode, user, group)
        if fixes is None:
            host.noop(f"{dest} is already up to date")
            return
        if host.state.config.DIFF:
            host.log(f"Will change {dest}: mode {found['mode']}, owner {found['user']}:{found['group']} -> "
                     f"mode {mode}, owner {user or found['user']}:{group or found['group']}", logger.info)
        target = f"\"$R\"{quote(path)}"
        script = "set -e; " + "; ".join(f"{step} {target}" for step in fixes)
        yield StringCommand(*shell(jail_name, root, running, script, [path]))
        return
    if host.state.config.DIFF and content is not None:
        show_diff(dest, content)
    sent = inline(content)
    source = copy_of
    if content is not None and sent is None:
        source = host.get_temp_filename(dest)
        yield FileUploadCommand(StringIO(content), source, remote_temp_filename=host.get_temp_filename(source))
    staging = path + STAGING_SUFFIX
    steps = [f"mkdir -p \"$R\"{quote(posixpath.dirname(path))}", f"rm -f \"$R\"{quote(staging)}",
             f"umask 077", f"cat > \"$R\"{quote(staging)}"]
    if user or group:
        steps.append(f"chown {quote(_owner(user, group))} \"$R\"{quote(staging)}")
    steps.append(f"chmod {quote(mode)} \"$R\"{quote(staging)}")
    if check and running:
        words = " ".join(quote(word.replace("{path}", staging)) for word in check)
        steps.append(f"{{ {words} || {{ rm -f {quote(staging)}; exit 1; }}; }}")
    if owed:
        steps.append(f"touch \"$R\"{quote(owed)}")
    steps.append(f"mv -f \"$R\"{quote(staging)} \"$R\"{quote(path)}")
    script = "set -e; " + "; ".join(steps)
    guarded = [path, staging] + ([owed] if owed else [])
    writer = StringCommand(*shell(jail_name, root, running, script, guarded))
    if sent is not None:
        yield StringCommand(sent, "|", writer)
        return
    placed = StringCommand(writer, "<", QuoteString(source))
    if content is None:
        yield placed
        return
    # the uploaded temporary file goes in the same remote command, whether the file was placed or refused
    yield StringCommand("{", placed, ";", "}", ";", "placed=$?;", "rm", "-f", QuoteString(source), ";",
                        "[ $placed -eq 0 ]")


@readings.scoped(lambda jail_name, root, running, path, mode, user, group:
                 readings.touches(readings.path_scope(root.rstrip("/") + path)))
@operation()
def directory(jail_name: str, root: str, running: bool, path: str, mode: str, user: str, group: str):
    """
    A directory in a jail with its mode and owner (numbers), made through a path the jail cannot redirect.

    + jail_name, root, running: the jail, its root on the host, whether it runs
    + path: the directory inside the jail (absolute)
    + mode, user, group: wanted mode and owner

    **Example:**

    .. code:: python

        jailfs.directory("tor", "/var/jails/tor", True, "/var/db/tor", "700", "256", "256")
    """
    found = readings.fact(Directory, path=root.rstrip("/") + path)
    if found and str(found["mode"]) == mode and str(found["user"]) == user and str(found["group"]) == group:
        host.noop(f"{root.rstrip('/')}{path} is already a directory with mode {mode}, owner {user}:{group}")
        return
    target = f"\"$R\"{quote(path)}"
    script = f"set -e; mkdir -p {target}; chown {quote(_owner(user, group))} {target}; chmod {quote(mode)} {target}"
    yield StringCommand(*shell(jail_name, root, running, script, [path]))


def links_out_refused(root: str) -> str:
    """A shell check for a stopped jail's root, before the host writes a whole tree into it (freebsd-update -b,
    base.txz): it fails when a symlink inside `root` resolves to a directory outside it. Such writes go below
    directories (install -d, install -S, ln, rm, tar): a directory link would carry them onto the host. A link as the last component is replaced (install -S renames over it), and a dangling one is never
    followed by a write, so those stay as the release or the jail left them."""
    message = "torjail: $link leads out of the jail root (to $resolved): nothing was written"
    return (
        f"find {quote(root)} -xdev -type l | while IFS= read -r link; do "
        'resolved=$(realpath "$link" 2>/dev/null) && [ -d "$resolved" ] || continue; '
        f'case "$resolved/" in {quote(root.rstrip("/") + "/")}*) continue;; esac; '
        f'echo "{message}" >&2; exit 1; done'
    )
