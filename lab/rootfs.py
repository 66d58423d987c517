"""The lab's root filesystem: a minimal Debian root dressed as a fresh FreeBSD 14 install.

The base root is built once with debootstrap (about 40 s from the machine's Debian mirror) and cached under
the lab directory; every lab host mounts it read-only as the lower layer of an overlay. Dressing it:
- only commands a FreeBSD base system has stay on PATH, at their FreeBSD paths; every other program of the
  Debian root moves to /usr/libexec/lab/bin (python3 included, so the emulated commands have an interpreter);
- dash is /bin/sh and root's shell, bash is gone, group 0 is `wheel`;
- /etc/rc.conf, /etc/fstab, /boot/loader.conf, /usr/local/etc/rc.d... look like a fresh FreeBSD VM's.
The lab's own code (emulated commands, BSD userland, boot scripts, a copy of the lab package) is installed
separately by install_lab(), at every boot of every lab host, so changing the lab needs no rebuild.
"""

import fcntl
import glob
import hashlib
import inspect
import os
import re
import shutil
import subprocess
import time

from lab import paths
from lab.freebsd import commandd, release, rootfiles

LAB_PACKAGE = os.path.dirname(os.path.abspath(__file__))
LIBEXEC = "usr/libexec/lab"
PATH_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin")

SUITE = "bookworm"
PACKAGES = ["openssh-server", "python3", "xz-utils", "iproute2", "nftables", "e2fsprogs", "procps", "tor",
            "diffutils", "less", "util-linux", "mount", "passwd", "tzdata", "netcat-openbsd", "netbase",
            # FreeBSD's base resolver (local-unbound, Debian's unbound behind lab/freebsd/commands/local_unbound.py)
            # and drill(1), which FreeBSD's base builds from the same ldns sources as Debian's ldnsutils.
            "unbound", "unbound-anchor", "ldnsutils"]

# FreeBSD base commands that the Debian root provides with compatible behaviour: FreeBSD path -> Debian name.
# The BSD userland of lab/freebsd/userland and the emulated commands of lab/freebsd/commands come on top.
BASE_COMMANDS = {
    "/bin/sh": "dash",
    **{f"/bin/{n}": n for n in (
        "cat chmod cp dd df echo expr hostname kill ln ls mkdir mv pwd realpath rm rmdir sleep stty sync test "
        "link unlink nproc pkill pgrep domainname").split()},
    "/bin/[": "[",
    **{f"/usr/bin/{n}": n for n in (
        "awk basename dirname env id which touch head tail wc tr cut diff cmp find xargs sort uniq tee printf "
        "seq mktemp install tar gzip gunzip zcat xz unxz xzcat egrep fgrep readlink true false yes nohup nice "
        "timeout logger less more whoami who tty base64 od split paste comm join fold fmt getent locale iconv "
        "ldd printenv cksum sum truncate mkfifo chgrp tsort expand unexpand pr du uptime w ssh scp sftp "
        "ssh-keygen ssh-add ssh-agent ssh-keyscan script renice login passwd groups logname nl shasum drill").split()},
    **{f"/sbin/{n}": n for n in "md5sum sha1sum sha224sum sha256sum sha384sum sha512sum dmesg".split()},
    "/sbin/nologin": "nologin",
    **{f"/usr/sbin/{n}": n for n in "chown chroot sshd nologin".split()},
    # FreeBSD's nc(1) is OpenBSD's netcat (-U for UNIX sockets, -z, -w), as Debian's netcat-openbsd is.
    "/usr/bin/nc": "nc.openbsd",
}


def _run(argv, **kwargs):
    subprocess.run(argv, check=True, **kwargs)


def recipe_hash():
    """Identifies what the base root is made of (packages, dressing): a change of it rebuilds the cached base."""
    parts = [SUITE, repr(PACKAGES), repr(sorted(BASE_COMMANDS.items())), FSTAB, RC_CONF_DEFAULTS, SSHD_CONFIG,
             NTP_CONF]
    parts += [inspect.getsource(func) for func in (debootstrap, dress, _dress_accounts, _dress_directories,
                                                    _dress_config)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def debian_mirror():
    """The Debian mirror the machine's apt uses (None: let debootstrap use its default)."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as handle:
            for line in handle:
                if line.startswith("URIs:") and "security" not in line:
                    return line.split()[1]
    try:
        with open("/etc/apt/sources.list") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) >= 3 and fields[0] == "deb" and "security" not in fields[1]:
                    return fields[1]
    except FileNotFoundError:
        pass
    return None


def ensure_base(log=print):
    """Return the cached base root made by the current recipe, building it when missing.

    Each recipe has its own directory (paths.base_dir(RECIPE)), so a lab host that runs on an older base keeps
    it while new boots get the new one; bases no running lab host uses are removed."""
    wanted = paths.base_dir(recipe_hash())
    os.makedirs(paths.lab_dir(), exist_ok=True)
    with open(os.path.join(paths.lab_dir(), "base.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _remove_unused_bases(keep=wanted)
        if os.path.exists(os.path.join(wanted, ".lab-base")):
            return wanted
        build = wanted + ".new"
        shutil.rmtree(build, ignore_errors=True)
        started = time.monotonic()
        log(f"building the lab's base root in {build} (debootstrap {SUITE}, once)")
        debootstrap(build)
        dress(build)
        with open(os.path.join(build, ".lab-base"), "w") as handle:
            handle.write(recipe_hash() + "\n")
        os.rename(build, wanted)
        log(f"base root built in {time.monotonic() - started:.0f} s")
        return wanted


def _bases_in_use():
    """The base roots running lab hosts have as the lower layer of their overlay (an argument of lab.boot)."""
    used = set()
    for pid_file in glob.glob(os.path.join(paths.lab_dir(), "hosts", "*", "init.pid")):
        try:
            with open(pid_file) as handle:
                pid = int(handle.read())
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().decode(errors="replace").split("\0")
        except (OSError, ValueError):
            continue
        if "lab.boot" in argv:
            used.update(os.path.normpath(arg) for arg in argv if arg.startswith(paths.lab_dir()))
    return used


def _remove_unused_bases(keep):
    used = _bases_in_use() | {os.path.normpath(keep)}
    for base in glob.glob(paths.base_dir("*")) + [paths.base_dir(None)]:
        if os.path.isdir(base) and os.path.normpath(base) not in used:
            shutil.rmtree(base, ignore_errors=True)
    for leftover in glob.glob(paths.base_dir("*") + ".new*") + glob.glob(paths.base_dir(None) + ".new*"):
        if not leftover.startswith(os.path.normpath(keep) + ".new"):
            remove_path(leftover)


def debootstrap(target):
    argv = ["debootstrap", "--variant=minbase", "--no-merged-usr", "--include=" + ",".join(PACKAGES), SUITE, target]
    mirror = debian_mirror()
    if mirror:
        argv.append(mirror)
    with open(target + ".log", "w") as log:
        try:
            _run(argv, stdout=log, stderr=subprocess.STDOUT)
        except subprocess.CalledProcessError:
            raise RuntimeError(f"debootstrap failed, see {target}.log") from None


def _resolve(root, path):
    """Follow symlinks of `path` (absolute inside `root`) without leaving the root."""
    for _ in range(40):
        full = os.path.join(root, path.lstrip("/"))
        if not os.path.islink(full):
            return full
        target = os.readlink(full)
        path = target if target.startswith("/") else os.path.join(os.path.dirname(path), target)
        path = os.path.normpath(path)
    raise RuntimeError(f"symlink loop at {path}")


def dress(root):
    """Turn a debootstrapped Debian root into the look of a fresh FreeBSD install (see the module docstring)."""
    libexec_bin = os.path.join(root, LIBEXEC, "bin")
    os.makedirs(libexec_bin, exist_ok=True)
    # Every program on PATH moves off PATH (hard links, so symlinked alternatives keep working).
    for d in PATH_DIRS:
        full_dir = os.path.join(root, d)
        if not os.path.isdir(full_dir):
            continue
        for name in sorted(os.listdir(full_dir)):
            real = _resolve(root, f"/{d}/{name}")
            dest = os.path.join(libexec_bin, name)
            if os.path.isfile(real) and not os.path.lexists(dest):
                os.link(real, dest)
    os.replace(os.path.join(libexec_bin, "python3.11"), os.path.join(libexec_bin, "python3"))
    for name in ("bash", "rbash", "python3.11", "pydoc3", "pydoc3.11", "pygettext3", "pygettext3.11"):
        remove_path(os.path.join(libexec_bin, name))
    for d in PATH_DIRS:
        full_dir = os.path.join(root, d)
        if os.path.isdir(full_dir):
            for name in os.listdir(full_dir):
                remove_path(os.path.join(full_dir, name))
        else:
            os.makedirs(full_dir)
    for fbsd_path, debian_name in BASE_COMMANDS.items():
        src = os.path.join(libexec_bin, debian_name)
        if os.path.exists(src):
            os.link(src, os.path.join(root, fbsd_path.lstrip("/")))
    os.makedirs(os.path.join(root, "usr/libexec"), exist_ok=True)
    os.link(os.path.join(root, "usr/lib/openssh/sftp-server"), os.path.join(root, "usr/libexec/sftp-server"))
    _dress_accounts(root)
    _dress_directories(root)
    _dress_config(root)


def remove_path(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _edit(path, func):
    with open(path) as handle:
        text = handle.read()
    with open(path, "w") as handle:
        handle.write(func(text))


def _dress_accounts(root):
    _edit(os.path.join(root, "etc/passwd"), lambda t: re.sub(r"^(root:[^\n]*:)/bin/bash$", r"\1/bin/sh", t, flags=re.M))
    for name in ("etc/group", "etc/gshadow"):
        _edit(os.path.join(root, name), lambda t: re.sub(r"^root:", "wheel:", t, flags=re.M))
    # FreeBSD's base has an ntpd user (uid and gid 123) that rc.d/ntpd runs ntpd as.
    _edit(os.path.join(root, "etc/passwd"), lambda t: t + "ntpd:x:123:123:NTP Daemon:/var/db/ntp:/usr/sbin/nologin\n")
    _edit(os.path.join(root, "etc/group"), lambda t: t + "ntpd:x:123:\n")
    # FreeBSD's base has an unbound user (uid and gid 59) that local-unbound drops to; Debian's unbound package
    # made its own at another uid, replaced here.
    _edit(os.path.join(root, "etc/passwd"), lambda t: re.sub(r"^unbound:[^\n]*\n", "", t, flags=re.M)
          + "unbound:x:59:59:Unbound DNS Resolver:/var/unbound:/usr/sbin/nologin\n")
    _edit(os.path.join(root, "etc/group"), lambda t: re.sub(r"^unbound:[^\n]*\n", "", t, flags=re.M)
          + "unbound:x:59:\n")


def _dress_directories(root):
    # FreeBSD keeps /var/run on the disk; Debian's sshd still wants /run/sshd, so /run points there.
    var_run = os.path.join(root, "var/run")
    remove_path(var_run)
    os.makedirs(var_run)
    remove_path(os.path.join(root, "run"))
    os.symlink("var/run", os.path.join(root, "run"))
    for d in ("etc/rc.d", "etc/defaults", "usr/local/etc/rc.d", "usr/local/bin", "usr/local/sbin", "usr/local/lib",
              "usr/local/share", "boot/defaults", "var/backups", "var/db", "var/db/ntp", "var/log", "var/empty", "root/.ssh",
              ".kernel", "dev", "proc", "tmp", LIBEXEC):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    # FreeBSD's /sys is a link to the kernel sources (dangling without them); the lab's sysfs lives off sight.
    remove_path(os.path.join(root, "sys"))
    os.makedirs(os.path.join(root, "usr/src"), exist_ok=True)
    os.symlink("usr/src/sys", os.path.join(root, "sys"))
    os.chmod(os.path.join(root, "root/.ssh"), 0o700)
    for d in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt", "var/lib/apt/lists"):
        shutil.rmtree(os.path.join(root, d), ignore_errors=True)
    for key in glob.glob(os.path.join(root, "etc/ssh/ssh_host_*")):
        os.unlink(key)
    # local-unbound's working directory and chroot, as FreeBSD's mtree (BSD.var.dist) makes it; Debian's own
    # places for its unbound (configuration, trust anchor, init scripts) do not exist on FreeBSD.
    for rel in ("etc/unbound", "var/lib/unbound", "etc/init.d/unbound", "etc/insserv.conf.d/unbound",
                "etc/apparmor.d/usr.sbin.unbound", "etc/resolvconf", "usr/lib/resolvconf", "usr/libexec/unbound-helper",
                "lib/systemd/system/unbound.service", "lib/systemd/system/unbound-resolvconf.service"):
        remove_path(os.path.join(root, rel))
    unbound_dir = os.path.join(root, "var/unbound")
    os.makedirs(unbound_dir, exist_ok=True)
    os.chown(unbound_dir, 59, 59)
    os.chmod(unbound_dir, 0o755)


FSTAB = """\
# Device\tMountpoint\tFStype\tOptions\tDump\tPass#
/dev/vtbd0p2\t/\t\tufs\trw\t1\t1
/dev/vtbd0p3\tnone\t\tswap\tsw\t0\t0
"""

RC_CONF_DEFAULTS = """\
# Default settings for the lab host's rc.conf (a short subset of FreeBSD's /etc/defaults/rc.conf).
# Do not edit: override in /etc/rc.conf.
rc_conf_files="/etc/rc.conf /etc/rc.conf.local"
hostname=""
ifconfig_lo0="inet 127.0.0.1"
cloned_interfaces=""
defaultrouter="NO"
swapoff="NO"
gateway_enable="NO"
sshd_enable="NO"
sshd_program="/usr/sbin/sshd"
sshd_flags=""
pf_enable="NO"
pf_rules="/etc/pf.conf"
pf_flags=""
pflog_enable="NO"
jail_enable="NO"
jail_list=""
jail_conf="/etc/jail.conf"
dumpdev="AUTO"
savecore_enable="YES"
kld_list=""
cron_enable="YES"
cron_program="/usr/sbin/cron"
cron_dst="YES"
cron_flags=""
ntpd_enable="NO"
ntpd_program="/usr/sbin/ntpd"
ntpd_config="/etc/ntp.conf"
ntpd_sync_on_start="NO"
ntpd_flags=""
ntpd_user="ntpd"
local_unbound_enable="NO"
local_unbound_oomprotect="YES"
local_unbound_tls="NO"
"""

NTP_CONF = """\
# /etc/ntp.conf of a fresh install (the FreeBSD pool; see ntp.conf(5)).
tos minclock 3 maxclock 6
pool 0.freebsd.pool.ntp.org iburst
restrict default limited kod nomodify notrap noquery nopeer
restrict source  limited kod nomodify notrap noquery
restrict 127.0.0.1
restrict ::1
leapfile "/var/db/ntpd.leap-seconds.list"
"""

NEWSYSLOG_CONF = """\
# /etc/newsyslog.conf of a fresh install, its includes (see newsyslog.conf(5)); the lab keeps no base log entries.
# logfilename          [owner:group]    mode count size when  flags [/pid_file] [sig_num]
<include> /etc/newsyslog.conf.d/[!.]*.conf
<include> /usr/local/etc/newsyslog.conf.d/[!.]*.conf
"""

SSHD_CONFIG = """\
# sshd_config of a fresh install (see sshd_config(5)); root logs in with its key only.
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile /var/run/sshd.pid
Subsystem sftp /usr/libexec/sftp-server
"""


def _dress_config(root):
    def write(rel, text, mode=0o644):
        path = os.path.join(root, rel)
        remove_path(path)
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, mode)

    write("etc/fstab", FSTAB)
    write("etc/defaults/rc.conf", RC_CONF_DEFAULTS)
    write("etc/rc.conf", 'sshd_enable="YES"\ndumpdev="AUTO"\n')
    write("boot/loader.conf", "")
    write("boot/defaults/loader.conf", "# Defaults of the loader (empty in the lab).\n")
    write("etc/ssh/sshd_config", SSHD_CONFIG)
    write("etc/sysctl.conf", "")
    write("etc/ntp.conf", NTP_CONF)
    write("etc/newsyslog.conf", NEWSYSLOG_CONF)
    localtime = os.path.join(root, "etc/localtime")
    real = _resolve(root, "/etc/localtime")
    shutil.copyfile(real, localtime + ".new")
    os.replace(localtime + ".new", localtime)
    for rel in ("etc/hostname", "etc/resolv.conf", "etc/motd"):
        remove_path(os.path.join(root, rel))


# ----- the lab's own code, installed at every boot -----

# -I: the lab's interpreter sees neither the environment's PYTHON* variables nor the caller's directory; -S: no
# site module (the lab needs only the standard library, and every emulated command pays for its start).
LAUNCHER = """#!/usr/libexec/lab/bin/python3 -IS
{header}import sys
sys.path.insert(0, "/usr/libexec/lab")
from lab.freebsd.{package}.{module} import main
sys.exit(main(sys.argv))
"""

RC_HEADER = re.compile(r"^# (PROVIDE|REQUIRE|BEFORE|KEYWORD):.*$", re.M)


def read_manifest(path):
    """Entries `FREEBSD_PATH MODULE` of a MANIFEST file (blank lines and # comments skipped)."""
    entries = []
    if not os.path.exists(path):
        return entries
    with open(path) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line:
                fbsd_path, module = line.split()
                entries.append((fbsd_path, module))
    return entries


def _launcher(package, module):
    with open(os.path.join(LAB_PACKAGE, "freebsd", package, module + ".py")) as handle:
        source = handle.read()
    # rc.d scripts written in Python carry rcorder(8) headers as comments; rcorder reads them from the launcher.
    header = "".join(match.group(0) + "\n" for match in RC_HEADER.finditer(source))
    text = LAUNCHER.format(header=header, package=package, module=module)
    if (package, module) in commandd.SERVED:
        # Started by the resident command server (lab.freebsd.commandd); the rest of the file is the same
        # launcher, which labcmd runs under python3 -IS where the server cannot serve.
        text = f"#!/{LIBEXEC}/bin/labcmd {package} {module}\n" + text.split("\n", 1)[1]
    return text


def labcmd_binary():
    """lab/freebsd/labcmd.c compiled (static: the lab root's libc is Debian's, not necessarily the machine's),
    once per version of its source, in the lab directory."""
    source = os.path.join(LAB_PACKAGE, "freebsd", "labcmd.c")
    with open(source, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()[:16]
    binary = os.path.join(paths.lab_dir(), f"labcmd-{digest}")
    if not os.path.exists(binary):
        os.makedirs(paths.lab_dir(), exist_ok=True)
        partial = f"{binary}.{os.getpid()}"
        subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-static", "-o", partial, source], check=True)
        os.replace(partial, binary)
    return binary


def _install_file(root, fbsd_path, content, mode=0o755):
    rootfiles.install(root, fbsd_path, content.encode(), mode)
    parent = os.path.dirname(fbsd_path).lstrip("/")
    if parent in PATH_DIRS:
        # One command, one place: drop a same-named program from the other base PATH directories. /usr/local
        # belongs to packages (pkg bootstrap puts the real pkg in /usr/local/sbin) and is left alone.
        for other in PATH_DIRS:
            if other != parent and not other.startswith("usr/local"):
                remove_path(os.path.join(root, other, os.path.basename(fbsd_path)))


def install_lab(root):
    """Install the lab's code into a root: a copy of the lab package, rc.subr and the rc.d shell scripts, launchers
    for every MANIFEST entry (userland, then the emulated commands: a later one wins on a shared path), /etc/rc."""
    dest = os.path.join(root, LIBEXEC, "lab")
    tmp = dest + ".new"
    remove_path(tmp)
    shutil.copytree(LAB_PACKAGE, tmp, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    remove_path(dest)
    os.rename(tmp, dest)
    for scripts in (os.path.join(LAB_PACKAGE, "freebsd", "rc.d"),
                    os.path.join(LAB_PACKAGE, "freebsd", "userland", "scripts")):
        for fbsd_path, script in read_manifest(os.path.join(scripts, "MANIFEST")):
            with open(os.path.join(scripts, script)) as handle:
                _install_file(root, fbsd_path, handle.read(), 0o644 if fbsd_path == "/etc/rc.subr" else 0o755)
    shutil.copy(labcmd_binary(), os.path.join(root, LIBEXEC, "bin", "labcmd"))
    for package in ("userland", "commands"):
        for fbsd_path, module in read_manifest(os.path.join(LAB_PACKAGE, "freebsd", package, "MANIFEST")):
            _install_file(root, fbsd_path, _launcher(package, module))
    for name in ("rc", "rc.shutdown"):
        with open(os.path.join(LAB_PACKAGE, name)) as handle:
            _install_file(root, f"/etc/{name}", handle.read(), 0o644)
    # The files freebsd-update replaces (freebsd-version, the kernel, a library) belong to the root once there.
    release.install(root)
