"""jail(8): create, modify and remove jails from jail.conf(5) or command-line parameters.

Creation follows jail(8)'s order: IP addresses (ifconfig(8) as a process), `mount`/`mount.fstab` (mount(8) as a
process), devfs, exec.prestart, the jail itself, exec.start inside it, exec.poststart. Removal runs
exec.prestop, exec.stop, kills what is left, removes the jail, exec.poststop, then unmounts and drops the
addresses. A failing step undoes the finished ones, so nothing stays half made.
"""

import ctypes
import os
import stat
import subprocess
import sys

from lab.freebsd import cli, jailconf, jails

OPTSTRING = "cdf:hiJ:lmn:p:qrRs:u:U:v"
USAGE = """usage: jail [-dhilqv] [-J jid_file] [-u username] [-U username]
            -[cmr] param=value ... [command=command ...]
       jail [-dqv] [-f file] -[cmr] [jail]
       jail [-qv] [-f file] -[rR] ['*' | jail ...]
       jail [-dhilqv] [-J jid_file] [-u username] [-U username]
            [-n jailname] [-s securelevel]
            path hostname [ip[,...]] command ..."""
DEFAULT_CONF = "/etc/jail.conf"
CONF_DIR = "/etc/jail.conf.d"
MOUNT = "/sbin/mount"
UMOUNT = "/sbin/umount"
IFCONFIG = "/sbin/ifconfig"
DEV_NODES = {"null": (1, 3), "zero": (1, 5), "random": (1, 8), "urandom": (1, 9)}
MNT_DETACH = 2
MS_NOSUID = 2
MS_NOEXEC = 8


class JailError(Exception):
    """Printed as `jail: MESSAGE`; the operation failed (exit 1)."""


def main(argv):
    try:
        options, operands = cli.parse("jail", argv[1:], OPTSTRING, USAGE)
    except cli.UsageError as error:
        return error.status
    flags = {letter[1] for letter, _ in options}
    conf = next((value for letter, value in options if letter == "-f"), None)
    quiet = "q" in flags
    actions = flags & {"c", "r", "R", "m"}
    if not actions or ("R" in actions and len(actions) > 1):
        print(USAGE, file=sys.stderr)
        return 1
    try:
        if "R" in actions:
            return _remove_without_config(operands, quiet)
        if "r" in actions and "c" not in actions:
            return _remove(operands, quiet)
        if "m" in actions:
            return _modify(operands, conf, quiet)
        return _create(operands, conf, quiet)
    except (JailError, jailconf.JailConfError) as error:
        cli.warnx("jail", str(error))
        return 1


# ----------------------------------------------------------------------------------------- config

def _config_for(name, conf):
    """Parameters of jail `name` from -f FILE, or /etc/jail.conf, or /etc/jail.conf.d/NAME.conf."""
    candidates = [conf] if conf else [DEFAULT_CONF, os.path.join(CONF_DIR, f"{name}.conf")]
    found_file = False
    for path in candidates:
        if not os.path.exists(path):
            continue
        found_file = True
        statements = jailconf.parse(path)
        if name in jailconf.jail_names(statements):
            return jailconf.resolve(statements, name)
    if conf and not found_file:
        raise JailError(f"{conf}: No such file or directory")
    if not found_file:
        raise JailError(f"{DEFAULT_CONF}: No such file or directory")
    raise JailError(f'"{name}" not found')


# System V IPC parameters (libjail's jailsys type): a name or its number, anything else refused.
JAILSYS = ("sysvmsg", "sysvsem", "sysvshm")
JAILSYS_VALUES = ("disable", "new", "inherit", "0", "1", "2")


def _command_line_parameters(operands):
    parameters = {}
    for operand in operands:
        if "=" not in operand:
            base, truth = jailconf.boolean_name(operand)
            if not jailconf.known(base):
                raise JailError(f"unknown parameter: {operand}")
            parameters[base] = truth
            continue
        key, value = operand.split("=", 1)
        if not jailconf.known(key):
            raise JailError(f"unknown parameter: {key}")
        if key in jailconf.BOOLEAN_PARAMETERS:
            parameters[key] = value.lower() not in ("false", "0", "no")
        else:
            parameters.setdefault(key, []).extend(value.split(",") if key.endswith(".addr") else [value])
    if "name" not in parameters:
        raise JailError("jail name is required")
    return parameters


def _single(parameters, key, default=None):
    value = parameters.get(key)
    if isinstance(value, list):
        return value[0] if value else default
    return default if value is None else value


# ----------------------------------------------------------------------------------------- create

class _Creation:
    """One jail being made; `undo` holds what to take back if a later step fails."""

    def __init__(self, name, parameters, quiet):
        self.name = name
        self.parameters = parameters
        self.quiet = quiet
        self.undo = []
        self.path = os.path.normpath(_single(parameters, "path", "/"))
        self.consolelog = _single(parameters, "exec.consolelog")

    def fail(self, message):
        for step in reversed(self.undo):
            step()
        raise JailError(f"{self.name}: {message}")

    def run_host(self, command_line, shell=True):
        argv = ["/bin/sh", "-c", command_line] if shell else command_line
        shown = command_line if shell else " ".join(command_line)
        if _run(argv, self.consolelog) != 0:
            self.fail(f"{shown}: failed")


def _run(argv, consolelog=None, env=None):
    output = open(consolelog, "a") if consolelog else None
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output, env=env).returncode
    except OSError as error:
        print(f"jail: {argv[0]}: {error.strerror}", file=sys.stderr)
        return 1
    finally:
        if output:
            output.close()


def _address_commands(parameters):
    """(add, remove) ifconfig command lines for the `iface|address` entries of ip4.addr and ip6.addr."""
    commands = []
    for key, family in (("ip4.addr", "inet"), ("ip6.addr", "inet6")):
        for entry in parameters.get(key) or []:
            if "|" not in entry:
                continue
            interface, address = entry.split("|", 1)
            bare = address.split("/")[0]
            commands.append(([IFCONFIG, interface, family, address, "alias"],
                             [IFCONFIG, interface, family, bare, "-alias"]))
    return commands


def _mount_entries(parameters):
    entries = list(parameters.get("mount") or [])
    for fstab in parameters.get("mount.fstab") or []:
        try:
            with open(fstab) as handle:
                entries += [line for line in handle if line.strip() and not line.lstrip().startswith("#")]
        except OSError as error:
            raise JailError(f"{fstab}: {error.strerror}") from None
    parsed = []
    for entry in entries:
        fields = entry.split()
        if len(fields) < 3:
            raise JailError(f"{parameters['name'][0]}: {entry.strip()}: invalid fstab entry")
        parsed.append((fields[0], fields[1], fields[2], fields[3] if len(fields) > 3 else "rw"))
    return parsed


def _mount_devfs(path):
    """A minimal devfs for the jail (a tmpfs named devfs, as the lab's mount(8) shows it): null, zero, random,
    urandom, the std streams and fd."""
    libc = ctypes.CDLL(None, use_errno=True)
    target = os.path.join(path, "dev")
    os.makedirs(target, exist_ok=True)
    if libc.mount(b"devfs", target.encode(), b"tmpfs", MS_NOSUID | MS_NOEXEC, b"mode=0755") != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    for node, (major, minor) in DEV_NODES.items():
        node_path = os.path.join(target, node)
        os.mknod(node_path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(node_path, 0o666)
    os.symlink("/proc/self/fd", os.path.join(target, "fd"))
    for number, stream in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"fd/{number}", os.path.join(target, stream))


def _unmount(target):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(target.encode(), MNT_DETACH)


def _create(operands, conf, quiet):
    if operands and "=" in " ".join(operands) or len(operands) > 1:
        parameters = _command_line_parameters(operands)
    elif len(operands) == 1:
        parameters = _config_for(operands[0], conf)
    else:
        return _create_all(conf, quiet)
    name = _single(parameters, "name")
    for key in JAILSYS:
        given = _single(parameters, key)
        if isinstance(given, str) and given.lower() not in JAILSYS_VALUES:
            raise JailError(f'{key}: unknown value "{given}"')
    if jails.find(name):
        raise JailError(f"{name}: jail {jails.find(name)['jid']} already exists")
    job = _Creation(name, parameters, quiet)
    for add, remove in _address_commands(parameters):
        job.run_host(add, shell=False)
        job.undo.append(lambda remove=remove: _run(remove))
    for device, directory, fstype, mount_options in _mount_entries(parameters):
        job.run_host([MOUNT, "-t", fstype, "-o", mount_options, device, directory], shell=False)
        job.undo.append(lambda directory=directory: _run([UMOUNT, directory]))
    if not os.path.isdir(job.path):
        job.fail(f"path {job.path}: No such file or directory")
    if parameters.get("mount.devfs") is True:
        try:
            _mount_devfs(job.path)
        except OSError as error:
            job.fail(f"devfs: {error.strerror}")
        job.undo.append(lambda: _unmount_devfs(job.path))
    for command in parameters.get("exec.prestart") or []:
        job.run_host(command)
    hostname = _single(parameters, "host.hostname", name)
    persist = parameters.get("persist") is True
    try:
        pid, start_time, armed = jails.start_init(job.path, hostname, persist)
    except OSError as error:
        job.fail(f"jail_set: {error}")
    record = {
        "name": name, "path": job.path, "hostname": hostname,
        "ip4": [entry.split("|")[-1].split("/")[0] for entry in parameters.get("ip4.addr") or []],
        "ip6": [entry.split("|")[-1].split("/")[0] for entry in parameters.get("ip6.addr") or []],
        "parameters": parameters, "holder": pid, "holder_start": start_time,
    }
    jid = jails.register(record)
    record["jid"] = jid
    job.undo.append(lambda: (jails.kill_all(record, 0), jails.unregister(jid)))
    for command in (parameters.get("exec.start") or []) + (parameters.get("command") or []):
        if _run_in_jail(record, command, parameters) != 0:
            os.close(armed)
            job.fail(f"{command}: failed")
    for command in parameters.get("exec.poststart") or []:
        job.run_host(command)
    os.close(armed)
    if not quiet:
        print(f"{name}: created")
    return 0


def _create_all(conf, quiet):
    """`jail -c` without a name: every jail of the configuration file, in file order."""
    path = conf or DEFAULT_CONF
    if not os.path.exists(path):
        raise JailError(f"{path}: No such file or directory")
    status = 0
    for name in jailconf.jail_names(jailconf.parse(path)):
        try:
            status |= _create([name], path, quiet)
        except (JailError, jailconf.JailConfError) as error:
            cli.warnx("jail", str(error))
            status = 1
    return status


def _unmount_devfs(path):
    _unmount(os.path.join(path, "dev"))


def _run_in_jail(jail, command, parameters):
    env = None
    user = _single(parameters, "exec.jail_user", "root")
    if parameters.get("exec.clean") is True:
        env = jails.clean_environment(jail["path"], user)
    entry = jails.passwd_entry(jail["path"], user) if user != "root" else None
    argv = jails.enter_command(jail, ["/bin/sh", "-c", command], *(entry[:2] if entry else (None, None)))
    return _run(argv, _single(parameters, "exec.consolelog"), env)


# ----------------------------------------------------------------------------------------- remove

def _targets(operands):
    if operands == ["*"]:
        return jails.running()
    found = []
    for operand in operands:
        jail = jails.find(operand)
        if jail is None:
            raise JailError(f'"{operand}" not found')
        found.append(jail)
    return found


def _remove(operands, quiet):
    if not operands:
        print(USAGE, file=sys.stderr)
        return 1
    status = 0
    for jail in _targets(operands):
        status |= _remove_one(jail, quiet)
    return status


def _remove_one(jail, quiet):
    parameters = jail["parameters"]
    consolelog = _single(parameters, "exec.consolelog")
    for command in parameters.get("exec.prestop") or []:
        _run(["/bin/sh", "-c", command], consolelog)
    for command in parameters.get("exec.stop") or []:
        _run_in_jail(jail, command, parameters)
    jails.kill_all(jail, float(_single(parameters, "stop.timeout", "10")))
    jails.unregister(jail["jid"])
    for command in parameters.get("exec.poststop") or []:
        _run(["/bin/sh", "-c", command], consolelog)
    if parameters.get("mount.devfs") is True:
        _unmount_devfs(jail["path"])
    for _, directory, _, _ in reversed(_mount_entries(parameters)):
        _run([UMOUNT, directory])
    for _, remove in _address_commands(parameters):
        _run(remove)
    if not quiet:
        print(f"{jail['name']}: removed")
    return 0


def _remove_without_config(operands, quiet):
    if not operands:
        print(USAGE, file=sys.stderr)
        return 1
    for jail in _targets(operands):
        jails.kill_all(jail, 0)
        jails.unregister(jail["jid"])
    return 0


# ----------------------------------------------------------------------------------------- modify

def _modify(operands, conf, quiet):
    if not operands:
        print(USAGE, file=sys.stderr)
        return 1
    if "=" in " ".join(operands):
        parameters = _command_line_parameters(operands)
    else:
        parameters = _config_for(operands[0], conf)
    name = _single(parameters, "name")
    jail = jails.find(name)
    if jail is None:
        raise JailError(f'"{name}" not found')
    jails.update(jail["jid"], {k: v for k, v in parameters.items() if k != "name"})
    if not quiet:
        print(f"{name}: updated")
    return 0

