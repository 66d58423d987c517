"""Files on the host: configuration files that must pass a check on the server before they replace the live one,
and pyinfra's files.put and files.directory answered from the deploy's readings when nothing is to change.

torrc and pf.conf are never replaced by something their own program rejects: the new content goes to a staging
file beside the live one, the check (`tor --verify-config`, `pfctl -nf`) runs on it, and only then does it move
into place. With `--dry --diff` the diff against the live file is shown, as pyinfra's files.put shows it. A live
file whose content already matches but whose mode or owner differs is corrected in place (chmod, chown), as
files.put corrects it.

`put` and `directory` send the commands of pyinfra's own operations, decided from torjail.freebsd.readings
rather than from facts read again inside pyinfra's operation: a re-run that changes nothing does not ask the
server again, and a fresh deploy does not read the same file three times. `put`, `directory` and
`copied` change only their path (and the directories they create above it): the readings of other files stay.

Each of these operations sends its consecutive shell commands as one (torjail.freebsd.shell), and a file's content
goes inside that command (torjail.freebsd.staging.inline): placing or checking a file is one remote command, its
upload first only when the content is too large to go inline.
"""

from __future__ import annotations

import posixpath
from shlex import quote
from io import StringIO

from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, OperationError, QuoteString, StringCommand, operation
from pyinfra.facts.files import Directory, File, Link, Sha1File
from pyinfra.operations.util import files as file_utils
from pyinfra.operations.util.files import ensure_mode_int

from torjail.freebsd.staging import STAGING_SUFFIX, content_sha1, inline, show_diff
from torjail.freebsd import readings, shell


def content_differs(dest: str, content: str) -> bool:
    """Whether the file at `dest` lacks this content (a mode or owner fix alone leaves what reads the file as it
    was: nothing to reload)."""
    return readings.fact(Sha1File, path=dest) != content_sha1(content)


def metadata_fixes(dest: str, mode: str | None, user: str | None, group: str | None) -> list:
    """The chmod and chown that give an existing file of the right content its wanted mode and owner, as pyinfra's
    files.put compares them (the File fact: mode as octal digits, owner and group as names); an empty list when
    both match, or when `dest` is not a regular file (a link to the right content stays as it was)."""
    found = readings.fact(File, path=dest)
    if not found:
        return []
    commands = []
    if mode and found["mode"] != ensure_mode_int(mode):
        if host.state.config.DIFF:
            logger.info("  mode %s -> %s", found["mode"], mode)
        commands.append(file_utils.chmod(dest, ensure_mode_int(mode)))
    if (user and found["user"] != user) or (group and found["group"] != group):
        if host.state.config.DIFF:
            logger.info("  owner %s:%s -> %s:%s", found["user"], found["group"], user or found["user"],
                        group or found["group"])
        commands.append(file_utils.chown(dest, user, group))
    return commands


def _checked_touches(dest, content, check, mode, user, group, keep_previous, owed):
    """The file, its staging copy, the copy it keeps and its marker (the check reads the staging file only)."""
    return readings.touches(*[readings.path_scope(path) for path in (dest, dest + STAGING_SUFFIX, keep_previous, owed)
                              if path])


@readings.scoped(_checked_touches)
@operation()
def checked(dest: str, content: str, check: list, mode: str = "644", user: str | None = None,
            group: str | None = None, keep_previous: str | None = None, owed: str | None = None):
    """
    Place a file only after a check command accepts it at a staging path beside its destination.

    + dest: the live file
    + content: the wanted content
    + check: the check command as a list of words; ``{path}`` stands for the staging file
    + mode, user, group: applied to the staging file before it moves into place; a live file of the right content
      with another mode or owner gets a chmod or chown, as files.put gives it
    + keep_previous: copy the live file here before replacing it (when there is one)
    + owed: a marker file created just before the new file moves into place, saying that whatever reads the
      file still owes it a reload (whoever reloads removes it): a deploy stopped between the move and the
      reload leaves the marker for the next deploy

    A failing check removes the staging file and fails the operation; the live file stays as it was.

    **Example:**

    .. code:: python

        files.checked("/etc/pf.conf", text, check=["pfctl", "-n", "-f", "{path}"], mode="600", user="root",
                      group="wheel")
    """
    yield from shell.joined(_checked_commands(dest, content, check, mode, user, group, keep_previous, owed))


def _checked_commands(dest, content, check, mode, user, group, keep_previous, owed):
    if not content_differs(dest, content):
        fixes = metadata_fixes(dest, mode, user, group)
        if not fixes:
            host.noop(f"{dest} is already up to date")
            return
        yield from fixes
        return
    if host.state.config.DIFF:
        show_diff(dest, content)
    staging = dest + STAGING_SUFFIX
    yield from _written(content, staging, inline(content))
    if user or group:
        yield StringCommand("chown", QuoteString(f"{user or ''}{':' + group if group else ''}"), QuoteString(staging))
    yield StringCommand("chmod", QuoteString(mode), QuoteString(staging))
    words = [QuoteString(word.replace("{path}", staging)) for word in check]
    yield StringCommand(*words, "||", "{", "rm", "-f", QuoteString(staging), ";", "exit", "1", ";", "}")
    if keep_previous:
        yield StringCommand(f"if [ -f {quote(dest)} ]; then cp -p {quote(dest)} {quote(keep_previous)}; fi")
    if owed:
        yield StringCommand("touch", QuoteString(owed))
    yield StringCommand("mv", "-f", QuoteString(staging), QuoteString(dest))


@readings.scoped(lambda src, dest: readings.touches(readings.path_scope(dest)))
@operation()
def copied(src: str, dest: str):
    """
    Copy a file on the server (``cp -p``) unless the copy already has the same content.

    + src: the file to copy
    + dest: where the copy goes

    **Example:**

    .. code:: python

        files.copied("/etc/resolv.conf", "/var/jails/tor/etc/resolv.conf")
    """
    source = readings.fact(Sha1File, path=src)
    if source is not None and source == readings.fact(Sha1File, path=dest):
        host.noop(f"{dest} is already a copy of {src}")
        return
    yield StringCommand("cp", "-p", QuoteString(src), QuoteString(dest))


@readings.scoped(lambda dest, content, mode, user, group: readings.touches(readings.path_scope(dest),
                                                                          readings.path_scope(dest + STAGING_SUFFIX)))
@operation()
def put(dest: str, content: str, mode: str, user: str | None = None, group: str | None = None):
    """
    Place a file with this content, mode and owner, creating its directory: the commands of pyinfra's
    ``files.put`` (with ``create_remote_dir``), decided from the deploy's readings, with the content sent inside
    them (written at a staging path readable by root only, then given its owner and mode and moved into place) or,
    when too large for that, uploaded as files.put does.

    + dest: the file
    + content: the wanted content (configuration: never a secret, see torjail.freebsd.staging.inline)
    + mode, user, group: as files.put takes them (owner and group as names)

    **Example:**

    .. code:: python

        files.put("/etc/jail.conf.d/tor.conf", text, mode="644", user="root", group="wheel")
    """
    yield from shell.joined(_put_commands(dest, content, mode, user, group))


def _put_commands(dest, content, mode, user, group):
    if readings.fact(File, path=dest):
        if not content_differs(dest, content):
            fixes = metadata_fixes(dest, mode, user, group)
            if not fixes:
                host.noop(f"{dest} is already up to date")
            yield from fixes
            return
    elif readings.fact(Directory, path=dest):
        raise OperationError(f"{dest} is a directory: a file cannot be placed there")
    if host.state.config.DIFF:
        show_diff(dest, content)
    parent = posixpath.dirname(dest)
    if parent:
        yield from _parent_directory(parent, user, group)
    sent = inline(content)
    # uploaded as files.put uploads it, or sent inline to a staging path moved into place once it has its mode
    target = dest if sent is None else dest + STAGING_SUFFIX
    yield from _written(content, target, sent)
    if user or group:
        yield file_utils.chown(target, user, group)
    yield file_utils.chmod(target, ensure_mode_int(mode))
    if target != dest:
        yield StringCommand("mv", "-f", QuoteString(target), QuoteString(dest))


def _written(content: str, path: str, sent):
    """`content` into `path`: uploaded, or (`sent`: torjail.freebsd.staging.inline) written by the command itself,
    readable by root only until its mode is set."""
    if sent is None:
        yield FileUploadCommand(StringIO(content), path, remote_temp_filename=host.get_temp_filename(path))
        return
    yield StringCommand("rm", "-f", QuoteString(path))
    yield StringCommand("(", "umask", "077", "&&", sent, ">", QuoteString(path), ")")


def _parent_directory(path, user, group):
    """The directory a placed file goes into, as files.put creates it: made with the file's owner when missing,
    left as it is when it exists (a link to a directory included)."""
    found = readings.fact(Directory, path=path)
    if found is None:
        yield StringCommand("mkdir", "-p", QuoteString(path))
        if user or group:
            yield file_utils.chown(path, user, group)
    elif found is False and not readings.fact(Link, path=path):
        raise OperationError(f"{path} exists and is not a directory")


@readings.scoped(lambda path, mode: readings.touches(readings.path_scope(path)))
@operation()
def directory(path: str, mode: str):
    """
    A directory with this mode: the commands of pyinfra's ``files.directory``, decided from the deploy's readings.

    + path: the directory
    + mode: its mode (octal digits)

    **Example:**

    .. code:: python

        files.directory("/var/jails/tor", mode="755")
    """
    found = readings.fact(Directory, path=path)
    if found and found["mode"] == ensure_mode_int(mode):
        host.noop(f"directory {path} already exists")
        return
    if found is False:
        raise OperationError(f"{path} exists and is not a directory")
    commands = [] if found else [StringCommand("mkdir", "-p", QuoteString(path))]
    yield from shell.joined([*commands, file_utils.chmod(path, ensure_mode_int(mode))])
