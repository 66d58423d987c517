"""pw(8) of FreeBSD, the part a provisioning tool uses: useradd, groupadd, usershow, groupshow, userdel,
groupdel and usermod -G. The accounts are written by the Linux shadow tools (off PATH); what is printed
and the exit statuses are pw's (EX_DATAERR 65 for an existing name, EX_NOUSER 67 for a missing one)."""

import getopt
import grp
import pwd
import subprocess
import sys

from lab.freebsd.userland.gnu import gnu

EX_USAGE, EX_DATAERR, EX_NOUSER = 64, 65, 67
OPTIONS = {
    "useradd": "C:qn:u:c:d:e:p:g:G:mM:k:s:oL:i:w:h:H:Y:N",
    "usermod": "C:qn:u:c:d:e:p:g:G:mM:l:k:s:oL:w:h:H:Y:N",
    "userdel": "C:qn:u:rY",
    "usershow": "C:qn:u:FPa7",
    "groupadd": "C:qn:g:M:h:H:oNY",
    "groupdel": "C:qn:g:Y",
    "groupshow": "C:qn:g:FPa",
}


def _fail(status, message):
    print(f"pw: {message}", file=sys.stderr)
    return status


def _user_line(entry):
    """A master.passwd(5) line: name:password:uid:gid:class:change:expire:gecos:home:shell."""
    return f"{entry.pw_name}:*:{entry.pw_uid}:{entry.pw_gid}::0:0:{entry.pw_gecos}:{entry.pw_dir}:{entry.pw_shell}"


def _find_user(name):
    try:
        return pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except KeyError:
        return None


def _find_group(name):
    try:
        return grp.getgrgid(int(name)) if name.isdigit() else grp.getgrnam(name)
    except KeyError:
        return None


def main(argv):
    if len(argv) < 2 or argv[1] not in OPTIONS:
        print("usage:\n  pw [user|group|lock|unlock] [add|del|mod|show|next] [help|switches/values]",
              file=sys.stderr)
        return EX_USAGE
    command, rest = argv[1], argv[2:]
    name = None
    if rest and not rest[0].startswith("-"):
        name, rest = rest[0], rest[1:]
    try:
        opts, extra = getopt.getopt(rest, OPTIONS[command])
    except getopt.GetoptError as err:
        return _usage_error(err.opt)
    values = {opt[1]: value for opt, value in opts}
    name = name or values.get("n")
    kind = "user" if command.startswith("user") else "group"
    if name is None and not ("u" in values or "g" in values and kind == "group"):
        return _fail(EX_DATAERR, f"{kind} name or id required")
    name = name or values.get("u" if kind == "user" else "g")
    return {"useradd": useradd, "usermod": usermod, "userdel": userdel, "usershow": usershow,
            "groupadd": groupadd, "groupdel": groupdel, "groupshow": groupshow}[command](name, values)


def _usage_error(opt):
    print(f"pw: unknown switch -{opt}" if opt else "pw: missing argument", file=sys.stderr)
    return EX_USAGE


def _run(argv):
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode:
        sys.stderr.write(result.stderr.replace(argv[0].rsplit("/", 1)[-1] + ":", "pw:"))
    return result.returncode


def useradd(name, values):
    if _find_user(name):
        return _fail(EX_DATAERR, f"user '{name}' already exists")
    argv = [gnu("useradd"), "-s", values.get("s", "/bin/sh"), "-d", values.get("d", f"/home/{name}")]
    if "u" in values:
        argv += ["-u", values["u"]] + (["-o"] if "o" in values else [])
    if "g" in values:
        if not _find_group(values["g"]):
            return _fail(EX_NOUSER, f"group `{values['g']}' does not exist")
        argv += ["-g", values["g"]]
    else:
        # Like pw: a group named after the user, with the user's id as its id when that one is free.
        if "u" in values and not _find_group(values["u"]) and not _find_group(name):
            if _run([gnu("groupadd"), "-g", values["u"], name]):
                return EX_DATAERR
            argv += ["-g", name]
        else:
            argv += ["-U"]
    if "G" in values:
        argv += ["-G", values["G"]]
    if "c" in values:
        argv += ["-c", values["c"]]
    argv += ["-m"] if "m" in values else ["-M"]
    if "N" in values:
        return 0
    return _run(argv + [name]) and EX_DATAERR


def usermod(name, values):
    if not _find_user(name):
        return _fail(EX_NOUSER, f"user '{name}' does not exist")
    argv = [gnu("usermod")]
    for flag, linux in (("s", "-s"), ("d", "-d"), ("c", "-c"), ("g", "-g"), ("G", "-G"), ("l", "-l")):
        if flag in values:
            argv += [linux, values[flag]]
    if "m" in values and "d" in values:
        argv.append("-m")
    return _run(argv + [name]) and EX_DATAERR if len(argv) > 1 else 0


def userdel(name, values):
    if not _find_user(name):
        return _fail(EX_NOUSER, f"no such user `{name}'")
    return _run([gnu("userdel")] + (["-r"] if "r" in values else []) + [name]) and EX_DATAERR


def usershow(name, values):
    entry = _find_user(name)
    if entry is None:
        return _fail(EX_NOUSER, f"no such user `{name}'")
    print(_user_line(entry))
    return 0


def groupadd(name, values):
    if _find_group(name):
        return _fail(EX_DATAERR, f"group name `{name}' already exists")
    argv = [gnu("groupadd")]
    if "g" in values:
        argv += ["-g", values["g"]] + (["-o"] if "o" in values else [])
    if "N" in values:
        return 0
    status = _run(argv + [name])
    if status == 0 and values.get("M"):
        status = _run([gnu("gpasswd"), "-M", values["M"], name])
    return status and EX_DATAERR


def groupdel(name, values):
    if not _find_group(name):
        return _fail(EX_NOUSER, f"unknown group `{name}'")
    return _run([gnu("groupdel"), name]) and EX_DATAERR


def groupshow(name, values):
    entry = _find_group(name)
    if entry is None:
        return _fail(EX_NOUSER, f"unknown group `{name}'")
    print(f"{entry.gr_name}:*:{entry.gr_gid}:{','.join(entry.gr_mem)}")
    return 0
