"""su(1) as FreeBSD's usr.bin/su: `su [-] [-flms] [-c class] [login [args]]`, root switching to another user.

What differs from Debian's su (util-linux), and matters to rc.d scripts (`echo CMD | su -m unbound`):
- options stop at the login name (BSD getopt); everything after it goes to the shell, so `su -m root -c 'id'`
  runs `sh -c id`, and -c before the login names a login class, which only root may give;
- with -m the shell is the invoking user's own login shell from the password database (root's /bin/sh), never
  $SHELL and never the target's: a target whose shell is nologin still runs the command;
- without -m or -l, HOME and SHELL (and USER, unless the target is root) are set, the rest of the environment kept;
  with - or -l the environment is cleared (TERM kept) and the login class's PATH set, and su changes to the home
  directory.
The lab's su is not set-uid: a user other than root gets FreeBSD's answer to a failed authentication.
"""

import grp
import os
import pwd
import sys

USAGE = "usage: su [-] [-flms] [-c class] [login [args]]"
LOGIN_PATH = "/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin:{home}/bin"
CLASSES = ("default", "daemon", "root", "staff")


def _parse(args):
    """FreeBSD getopt over "-flmsc:": a lone "-" means -l; options end at the first operand. Of -m and -l the
    later one counts (flags holds only that one)."""
    flags, login_class, index = set(), None, 0
    while index < len(args):
        arg = args[index]
        if arg == "-":
            flags.discard("m")
            flags.add("l")
            index += 1
            continue
        if arg == "--":
            index += 1
            break
        if not arg.startswith("-"):
            break
        position = 1
        while position < len(arg):
            letter = arg[position]
            if letter == "c":
                login_class = arg[position + 1:]
                if not login_class:
                    index += 1
                    if index >= len(args):
                        print("su: option requires an argument -- c", file=sys.stderr)
                        raise SystemExit(USAGE)
                    login_class = args[index]
                break
            if letter not in "flms-":
                print(f"su: illegal option -- {letter}", file=sys.stderr)
                raise SystemExit(USAGE)
            letter = "l" if letter == "-" else letter
            if letter in "lm":
                flags.discard("m" if letter == "l" else "l")
            flags.add(letter)
            position += 1
        index += 1
    return flags, login_class, args[index:]


def main(argv):
    try:
        flags, login_class, rest = _parse(argv[1:])
    except SystemExit as usage:
        print(usage.code, file=sys.stderr)
        return 1
    user = rest[0] if rest else "root"
    args = rest[1:]
    asme = "m" in flags
    ruid = os.getuid()
    if os.geteuid() != 0 or ruid != 0:
        print("su: Sorry", file=sys.stderr)
        return 1
    try:
        me = pwd.getpwuid(ruid)
    except KeyError:
        print("su: who are you?", file=sys.stderr)
        return 1
    try:
        target = pwd.getpwnam(user)
    except KeyError:
        print(f"su: unknown login: {user}", file=sys.stderr)
        return 1
    if login_class is not None and login_class not in CLASSES:
        print(f"su: unknown class: {login_class}", file=sys.stderr)
        return 1
    if asme:
        shell = me.pw_shell or "/bin/sh"
    else:
        shell = target.pw_shell or "/bin/sh"
    env = dict(os.environ)
    if "l" in flags:
        env = {"TERM": os.environ["TERM"]} if "TERM" in os.environ else {}
        env.update({"USER": target.pw_name, "HOME": target.pw_dir, "SHELL": shell,
                    "PATH": LOGIN_PATH.format(home=target.pw_dir), "LOGNAME": target.pw_name})
    elif not asme:
        if target.pw_uid:
            env["USER"] = target.pw_name
        env["HOME"] = target.pw_dir
        env["SHELL"] = shell
    groups = [g.gr_gid for g in grp.getgrall() if target.pw_name in g.gr_mem]
    os.setgroups(sorted({target.pw_gid, *groups}))
    os.setgid(target.pw_gid)
    os.setuid(target.pw_uid)
    if "l" in flags:
        try:
            os.chdir(target.pw_dir)
        except OSError:
            print("su: no directory", file=sys.stderr)
            return 1
    arg0 = "-su" if "l" in flags else "su"
    sys.stdout.flush()
    try:
        os.execve(shell, [arg0, *args], env)
    except OSError as error:
        print(f"su: {shell}: {error.strerror}", file=sys.stderr)
        return 1
