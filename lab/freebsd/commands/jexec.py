"""jexec(8): run a command inside a running jail, optionally as one of the jail's users.

The command runs in the jail's mount, PID and UTS namespaces with the jail's path as its root (nsenter into
the jail's first process), so it sees the jail's files, hostname and processes and shares the network.
"""

import os
import sys

from lab.freebsd import cli, jails

USAGE = "usage: jexec [-l] [-d working-directory] [-u username | -U username] jail [command ...]"


def _resolve(root, command, path):
    if "/" in command:
        return os.path.exists(os.path.join(root, command.lstrip("/")))
    return any(os.access(os.path.join(root, d.lstrip("/"), command), os.X_OK) for d in path.split(":") if d)


def main(argv):
    try:
        options, operands = cli.parse("jexec", argv[1:], "d:lnu:U:", USAGE)
    except cli.UsageError as error:
        return error.status
    if not operands:
        print(USAGE, file=sys.stderr)
        return 1
    values = {letter[1]: value for letter, value in options}
    jail = jails.find(operands[0])
    if jail is None:
        cli.warnx("jexec", f'jail "{operands[0]}" not found')
        return 1
    user = values.get("U") or values.get("u")
    entry = None
    if user:
        entry = jails.passwd_entry(jail["path"] if "U" in values else "/", user)
        if entry is None:
            cli.warnx("jexec", f"{'jail ' if 'U' in values else ''}user {user}: no such user")
            return 1
    env = jails.clean_environment(jail["path"], user or "root") if "l" in values else dict(os.environ)
    command = operands[1:]
    if not command:
        shell = (entry or jails.passwd_entry(jail["path"], "root") or (0, 0, "/", "/bin/sh"))[3]
        command = [shell or "/bin/sh"]
    if not _resolve(jail["path"], command[0], env.get("PATH", jails.CLEAN_PATH)):
        cli.warnx("jexec", f"execvp: {command[0]}: No such file or directory")
        return 1
    argv_enter = jails.enter_command(jail, command, *(entry[:2] if entry else (None, None)))
    if "d" in values:
        argv_enter = argv_enter[:argv_enter.index("--wd")] + [f"--wd={values['d']}"] + \
            argv_enter[argv_enter.index("--wd") + 1:]
    sys.stdout.flush()
    os.execve(argv_enter[0], argv_enter, env)
