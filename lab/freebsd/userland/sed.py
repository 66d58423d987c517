"""sed(1) of FreeBSD: options parsed as FreeBSD's getopt("EI:ae:f:i:lnrsuz") does, then the editing done by
GNU sed. The difference that matters: -i and -I take the backup suffix as their argument, so `sed -i '' -e
...` edits in place without a backup, `sed -i.bak ...` keeps FILE.bak, and `sed -i 's/a/b/' f` takes the
script as a suffix and then fails on the file name as a script ("invalid command code"), as on FreeBSD.
GNU long options do not exist.
"""

import getopt
import re
import subprocess
import sys

from lab.freebsd.userland.gnu import gnu

USAGE = ("usage: sed script [-Ealnru] [-i extension] [file ...]\n"
         "\tsed [-Ealnu] [-i extension] [-e script] ... [-f script_file] ... [file ...]")
GNU_ERROR = re.compile(r"^sed: -e expression #(\d+), char \d+: (.*)$")


def main(argv):
    try:
        opts, args = getopt.getopt(argv[1:], "EI:ae:f:i:lnrsuz")
    except getopt.GetoptError as err:
        if err.opt and "requires argument" in err.msg:
            print(f"sed: option requires an argument -- {err.opt}", file=sys.stderr)
        else:
            print(f"sed: illegal option -- {err.opt[:1] or '-'}", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 1
    gnu_args, scripts, inplace = [], [], None
    for opt, value in opts:
        if opt in ("-E", "-r"):
            gnu_args.append("-E")
        elif opt in ("-i", "-I"):
            inplace = value
        elif opt == "-e":
            scripts.append(value)
            gnu_args += ["-e", value]
        elif opt == "-f":
            scripts.append(value)
            gnu_args += ["-f", value]
        elif opt == "-n":
            gnu_args.append("-n")
        elif opt in ("-l", "-u"):
            gnu_args.append("-u")
        elif opt == "-z":
            gnu_args.append("-z")
        elif opt == "-s":
            gnu_args.append("-s")
    if not scripts:
        if not args:
            print(USAGE, file=sys.stderr)
            return 1
        script = args.pop(0)
        scripts.append(script)
        gnu_args += ["-e", script]
    if inplace is not None and not args:
        # FreeBSD compiles the script first, and refuses standard input only when it would start reading.
        check = subprocess.run(["sed"] + gnu_args, executable=gnu("sed"), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if check.returncode:
            return _report(check, scripts)
        print("sed: -I or -i may not be used with stdin", file=sys.stderr)
        return 1
    if inplace is not None:
        gnu_args.append(f"--in-place={inplace}" if inplace else "--in-place")
    result = subprocess.run(["sed"] + gnu_args + ["--"] + args, executable=gnu("sed"), stderr=subprocess.PIPE, text=True)
    return _report(result, scripts)


def _report(result, scripts):
    """Pass GNU sed's exit status on, with its script errors worded as FreeBSD's sed words them."""
    for line in result.stderr.splitlines():
        match = GNU_ERROR.match(line)
        if match:
            number = int(match.group(1)) - 1
            script = scripts[number] if number < len(scripts) else ""
            message = match.group(2)
            command = re.match(r"unknown command: `(.)'", message)
            if command:
                message = f"invalid command code {command.group(1)}"
            line = f'sed: 1: "{script}": {message}'
        print(line, file=sys.stderr)
    return result.returncode
