"""local-unbound(8) and its tools as FreeBSD's base installs them: Debian's unbound binaries behind FreeBSD's names.

FreeBSD builds unbound into the base system under other names (/usr/sbin/local-unbound, local-unbound-anchor,
local-unbound-checkconf, local-unbound-control) with its own compiled-in paths: the configuration file
/var/unbound/unbound.conf, the trust anchor /var/unbound/root.key and the ICANN certificate bundle
/var/unbound/icannbundle.pem. Debian's build of the same programs (kept off PATH in /usr/libexec/lab/bin) has
/etc/unbound/... compiled in, so each launcher passes FreeBSD's path where the caller gave none, then executes
the real program with the FreeBSD name as its argv[0] (rc.subr finds the daemon by that name, as ps shows it).
Everything else (option parsing, messages, exit codes, the daemon itself) is the real unbound 1.17 of Debian.

What stays Debian's: the defaults compiled in for settings a configuration leaves out (chroot, pidfile, directory,
username): FreeBSD's build has /var/unbound, /var/unbound/unbound.pid and unbound, Debian's /etc/unbound,
/run/unbound.pid and unbound. A configuration that sets them all (as local-unbound-setup's and torjail's do) runs
the same on both.
"""

import getopt
import os
import sys

REAL_DIR = "/usr/libexec/lab/bin"
CONFIG_FILE = "/var/unbound/unbound.conf"
ROOT_ANCHOR_FILE = "/var/unbound/root.key"
ROOT_CERT_FILE = "/var/unbound/icannbundle.pem"

# FreeBSD name -> (Debian program, the getopt string of that program).
PROGRAMS = {
    "local-unbound": ("unbound", "c:dhpvw:V"),
    "local-unbound-checkconf": ("unbound-checkconf", "fho:q"),
    "local-unbound-control": ("unbound-control", "c:s:qh"),
    "local-unbound-anchor": ("unbound-anchor", "46C:FP:a:b:c:f:hln:r:Rs:Su:vx:"),
}


def with_freebsd_defaults(name, args):
    """The arguments with FreeBSD's compiled-in paths added where the caller gave none (getopt rules: options stop
    at the first operand or at --). Arguments the program's getopt refuses are passed as they are, for the real
    program to refuse with its own message and status."""
    program, optstring = PROGRAMS[name]
    try:
        pairs, operands = getopt.getopt(args, optstring)
    except getopt.GetoptError:
        return args
    letters = {option[1] for option, value in pairs}
    if name in ("local-unbound", "local-unbound-control"):
        return args if "c" in letters else ["-c", CONFIG_FILE] + args
    if name == "local-unbound-checkconf":
        return args if operands or "h" in letters else args + [CONFIG_FILE]
    extra = []
    if "a" not in letters:
        extra += ["-a", ROOT_ANCHOR_FILE]
    if "c" not in letters:
        extra += ["-c", ROOT_CERT_FILE]
    return extra + args


def main(argv):
    name = os.path.basename(argv[0])
    if name not in PROGRAMS:
        print(f"{name}: not a local-unbound program", file=sys.stderr)
        return 1
    real = os.path.join(REAL_DIR, PROGRAMS[name][0])
    args = with_freebsd_defaults(name, argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(real, [argv[0]] + args)
    except OSError as error:
        print(f"{name}: {real}: {error.strerror}", file=sys.stderr)
        return 1
