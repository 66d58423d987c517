"""local-unbound-setup(8): FreeBSD's generator of local-unbound's configuration (a shell script in base), as
FreeBSD 14's usr.sbin/unbound/setup/local-unbound-setup.sh behaves.

It writes, under the working directory (-w, default /var/unbound), forward.conf (the forwarders given as operands,
or the non-local nameservers of resolv.conf; `none` for recursion), lan-zones.conf, control.conf and unbound.conf
(chrooted into the working directory unless a file lies outside it), each through a temporary file: a file that
differs is first saved to /var/backups/NAME.YYYYmmdd.HHMMSS, one that is the same is left alone. Unless -n, it then
restarts the service (refusing when it is not enabled), and last rewrites resolvconf.conf and resolv.conf (the
non-local nameservers commented out, 127.0.0.1 and `options edns0` added). Messages and exit codes are the script's.
rc.d/local_unbound runs it (`setup`, with -n) only while the configuration file is missing.
"""

import datetime
import os
import re
import subprocess
import sys
import tempfile

SELF = "local-unbound-setup"
OPTIONS = "a:C:c:f:no:p:R:r:s:tu:w:"
USAGE = """usage: local-unbound-setup [options] [forwarder ...]
options:
    -n          do not start unbound
    -a path     full path to trust anchor file
    -C path     full path to additional configuration directory
    -c path     full path to unbound configuration file
    -f path     full path to forwarding configuration
    -O path     full path to remote control socket
    -o path     full path to remote control configuration
    -p path     full path to pid file
    -R path     full path to resolvconf.conf
    -r path     full path to resolv.conf
    -s service  name of unbound service
    -u user     user to run unbound as
    -w path     full path to working directory"""
BACKUP_DIR = "/var/backups"

OCTET = r"([0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])"
IPV4 = rf"({OCTET}(\.{OCTET}){{3}})"
WORD = r"([0-9A-Fa-f]{1,4})"
IPV6 = rf"(({WORD}:){{1,}}(:|{WORD}?(:{WORD})*)|::1)"
PORT = r"([1-9][0-9]{0,3}|[1-5][0-9]{4,4}|6([0-4][0-9]{3}|5([0-4][0-9]{2}|5([0-2][0-9]|3[0-5]))))"
DNSNAME = r"([0-9A-Za-z-]{1,}(\.[0-9A-Za-z-]{1,})*\.?)"
FORWARD_ADDR = rf"(({IPV4}|{IPV6})(@{PORT})?)"
FORWARD_NAME = rf"({DNSNAME}(@{PORT})?)"
FORWARD_TLS = rf"({FORWARD_ADDR}(#{DNSNAME})?)"
LOCAL_NAMESERVERS = re.compile(r"^(127\.0\.0\.1|::1|localhost|localhost\..*)$")


def _getopts(args):
    """sh getopts over OPTIONS: (values, operands); an unknown option or a missing value exits 1 with the usage."""
    values = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            index += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        position = 1
        while position < len(arg):
            letter = arg[position]
            spec = OPTIONS.find(letter)
            if spec < 0 or letter == ":":
                print(f"Illegal option -{letter}", file=sys.stderr)
                _usage()
            if spec + 1 < len(OPTIONS) and OPTIONS[spec + 1] == ":":
                value = arg[position + 1:]
                if not value:
                    index += 1
                    if index >= len(args):
                        print(f"No arg for -{letter} option", file=sys.stderr)
                        _usage()
                    value = args[index]
                values[letter] = value
                break
            values[letter] = ""
            position += 1
        index += 1
    return values, args[index:]


def _usage():
    print(USAGE, file=sys.stderr)
    sys.exit(1)


def _sh_lines(text):
    """Lines as sh's `read line` returns them (leading and trailing blanks removed)."""
    return [line.strip(" \t") for line in text.split("\n")[:-1 if text.endswith("\n") else None]] if text else []


def _key_value(line):
    bare = line.split("#", 1)[0]
    return bare.split(" ", 1)[0], bare.split(" ", 1)[1] if " " in bare else bare


def nameservers(text):
    """The uncommented nameserver lines of resolv.conf that do not point at this host."""
    found = []
    for line in _sh_lines(text):
        key, value = _key_value(line)
        if key == "nameserver" and not LOCAL_NAMESERVERS.match(value):
            found.append(value)
    return found


def resolv_conf(text):
    """resolv.conf pointing at the local resolver: other nameservers commented out, 127.0.0.1 and edns0 added."""
    out, localhost, edns0 = [], False, False
    for line in _sh_lines(text):
        key, value = _key_value(line)
        prefix = ""
        if key == "nameserver":
            if LOCAL_NAMESERVERS.match(value):
                localhost = True
            else:
                prefix = "# "
        elif key == "options" and "edns0" in value:
            edns0 = True
        out.append(prefix + line)
    if not localhost:
        out.append("nameserver 127.0.0.1")
    if not edns0:
        out.append("options edns0")
    return out


def unexpand(lines):
    """unexpand(1) without options: leading blanks turned into tabs where they fill a tab stop."""
    result = []
    for line in lines:
        stripped = line.lstrip(" ")
        spaces = len(line) - len(stripped)
        result.append("\t" * (spaces // 8) + " " * (spaces % 8) + stripped)
    return "".join(line + "\n" for line in result)


def header():
    return [f"# This file was generated by {SELF}.", "# Modifications will be overwritten."]


class Setup:
    def __init__(self, values, forwarders):
        self.dest = os.environ.get("DESTDIR", "")
        self.stamp = datetime.datetime.now().strftime("%Y%m%d.%H%M%S")
        self.user = values.get("u") or "unbound"
        self.workdir = values.get("w") or "/var/unbound"
        self.confdir = values.get("C") or f"{self.workdir}/conf.d"
        self.unbound_conf = values.get("c") or f"{self.workdir}/unbound.conf"
        self.forward_conf = values.get("f") or f"{self.workdir}/forward.conf"
        self.lanzones_conf = f"{self.workdir}/lan-zones.conf"
        self.control_conf = values.get("o") or f"{self.workdir}/control.conf"
        self.control_socket = "/var/run/local_unbound.ctl"
        self.anchor = values.get("a") or f"{self.workdir}/root.key"
        self.pidfile = values.get("p") or "/var/run/local_unbound.pid"
        self.resolv = values.get("r") or "/etc/resolv.conf"
        self.resolvconf = values.get("R") or "/etc/resolvconf.conf"
        self.service = values.get("s") or "local_unbound"
        self.start = "n" not in values
        self.tls = "t" in values
        self.forwarders = forwarders

    def path(self, file):
        return self.dest + file

    def backup(self, file):
        if os.path.isfile(self.path(file)):
            saved = f"{BACKUP_DIR}/{os.path.basename(file)}.{self.stamp}"
            print(f"Original {file} saved as {saved}")
            os.rename(self.path(file), self.dest + saved)

    def replace(self, file, content):
        """Write through a temporary file; keep an identical file, save a different one first."""
        directory = os.path.dirname(self.path(file)) or "."
        handle, temporary = tempfile.mkstemp(prefix=os.path.basename(file) + ".", dir=directory)
        with os.fdopen(handle, "w") as out:
            out.write(content)
        os.chmod(temporary, 0o644)
        if not os.path.isfile(self.path(file)):
            print(f"{file} created")
            os.rename(temporary, self.path(file))
            return
        with open(self.path(file)) as current:
            same = current.read() == content
        if same:
            print(f"{file} not modified")
            os.unlink(temporary)
        else:
            self.backup(file)
            os.rename(temporary, self.path(file))

    def forward_lines(self):
        lines = header() + ["forward-zone:", "        name: ."]
        if self.tls:
            lines.append("        forward-tls-upstream: yes")
            lines += [f"        forward-addr: {f}" for f in self.forwarders if re.fullmatch(FORWARD_TLS, f)]
            return lines
        for forwarder in self.forwarders:
            if re.fullmatch(FORWARD_ADDR, forwarder):
                lines.append(f"        forward-addr: {forwarder}")
            elif re.fullmatch(FORWARD_NAME, forwarder):
                lines.append(f"        forward-host: {forwarder}")
        return lines

    def chrootdir(self):
        chroot = self.workdir
        for file in (self.unbound_conf, self.forward_conf, self.lanzones_conf, self.control_conf, self.anchor):
            if not file.startswith(self.workdir.rstrip("/") + "/"):
                print(f"warning: {file} is outside {self.workdir}", file=sys.stderr)
                chroot = ""
        if not chroot:
            print("warning: disabling chroot", file=sys.stderr)
        return chroot

    def unbound_lines(self):
        lines = header() + ["server:", f"        username: {self.user}", f"        directory: {self.workdir}",
                            f"        chroot: {self.chrootdir()}", f"        pidfile: {self.pidfile}",
                            f"        auto-trust-anchor-file: {self.anchor}"]
        if self.tls:
            lines.append("        tls-system-cert: yes")
        lines.append("")
        for file in (self.forward_conf, self.lanzones_conf, self.control_conf):
            if os.path.isfile(file):
                lines.append(f"include: {file}")
        if os.path.isdir(self.confdir):
            lines.append(f"include: {self.confdir}/*.conf")
        return lines

    def run(self):
        os.umask(0o022)
        style = "static"
        if " ".join(self.forwarders).lower() == "none":
            self.forwarders, style = ["none"], "recursing"
        elif not self.forwarders:
            style = "dynamic"
            if os.path.isfile(self.path(self.resolv)):
                print(f"Extracting forwarders from {self.resolv}.")
                with open(self.path(self.resolv)) as handle:
                    self.forwarders = nameservers(handle.read())
        if not self.forwarders:
            found = "using existing " + os.path.basename(self.forward_conf) if os.path.isfile(self.forward_conf) \
                else "unbound will recurse"
            print(f"No forwarders found in {os.path.basename(self.resolv)}, {found}.")
        elif self.forwarders == ["none"]:
            print("Forwarding disabled, unbound will recurse.")
            self.backup(self.forward_conf)
        else:
            self.replace(self.forward_conf, unexpand(self.forward_lines()))
        self.replace(self.lanzones_conf, unexpand(header() + [
            "server:", "        # Unblock reverse lookups for LAN addresses", "        unblock-lan-zones: yes",
            "        insecure-lan-zones: yes"]))
        self.replace(self.control_conf, unexpand(header() + [
            "remote-control:", "        control-enable: yes", f"        control-interface: {self.control_socket}",
            "        control-use-cert: no"]))
        self.replace(self.unbound_conf, unexpand(self.unbound_lines()))
        if self.start:
            if subprocess.run(["service", self.service, "enabled"]).returncode != 0:
                print(f"Please enable {self.service} in rc.conf(5) and try again.")
                return 1
            if subprocess.run(["service", self.service, "restart"]).returncode != 0:
                print(f"Failed to start {self.service}.")
                return 1
        lines = header() + ['libc="NO"']
        if style == "dynamic":
            lines += [f'unbound_conf="{self.forward_conf}"', f'unbound_pid="{self.pidfile}"',
                      f'unbound_service="{self.service}"', f'unbound_restart="service {self.service} reload"']
        else:
            lines.append("# Static DNS configuration")
        self.replace(self.resolvconf, unexpand(lines))
        try:
            with open(self.path(self.resolv)) as handle:
                current = handle.read()
            content = unexpand(resolv_conf(current))
        except OSError as error:
            print(f"/usr/sbin/{SELF}: cannot open {self.path(self.resolv)}: {error.strerror}", file=sys.stderr)
            content = ""
        self.replace(self.resolv, content)
        return 0


def main(argv):
    print(f"destination: {os.environ.get('DESTDIR', '')}")
    sys.stdout.flush()
    values, operands = _getopts(argv[1:])
    return Setup(values, operands).run()
