"""deploy.py planned against whole servers described by fact fixtures (tests/plan/fixtures/deploy_*.yaml).

A fixture may say `extends: NAME`: it then holds only the facts that differ from fixtures/NAME.yaml (a fact with
arguments is merged argument by argument). A files.Sha1File value `generated` stands for the checksum of the file
torjail renders for that path, so the fixtures stay true when a template changes.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
import shlex
from shlex import quote
from unittest import mock

import pytest
import yaml
from harness import STDIN_MARK, plan
from pyinfra.api import FunctionCommand, State
from pyinfra.api.exceptions import PyinfraError

from torjail import secrets
from torjail.procedures import pfguard
from torjail.render import planned_files, render_file
from torjail.settings import SettingsError, build_settings
from torjail.tasks import firewall, jail
from torjail.tasks.vault import VaultError, VaultLocked

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy.py"
FIXTURES = Path(__file__).parent / "fixtures"
PASSPHRASE = "plan test passphrase: 4 words & more"
EXT_IF = "vtnet0"  # the default route interface of the fixtures

MARKER = "/var/jails/tor.img.torjail-incomplete"
TORRC = "/var/jails/tor/usr/local/etc/tor/torrc"
RELOAD = f"service -j tor tor reload && rm -f {TORRC}.torjail-reload"


def guard(pf_was_enabled: bool) -> str:
    """The command that starts the rollback guard, for pf enabled or off before the load."""
    script = "echo $$ > /var/run/torjail-pf-guard.pid; " + pfguard.rollback_script("/etc/pf.conf", 90, pf_was_enabled)
    return f"touch /var/run/torjail-pf-guard.waiting && daemon -f sh -c {quote(script)}"


GUARD, GUARD_PF_OFF = guard(True), guard(False)
CANCEL = ("if ! mv /var/run/torjail-pf-guard.waiting /var/run/torjail-pf-guard.waiting.cancelled 2>/dev/null; "
          "then echo 'torjail: the pf rollback guard was no longer waiting: it rolls the new ruleset back (or has "
          "rolled it back); check `pfctl -s info` and `pfctl -s rules` and deploy again' >&2; exit 1; fi; "
          'pid=$(cat /var/run/torjail-pf-guard.pid 2>/dev/null); [ -n "$pid" ] && kill "$pid" 2>/dev/null; '
          "rm -f /var/run/torjail-pf-guard.waiting.cancelled /var/run/torjail-pf-guard.pid "
          "/etc/pf.conf.torjail-previous")
SUPERSEDE = ("pid=$(cat /var/run/torjail-pf-guard.pid 2>/dev/null); if mv /var/run/torjail-pf-guard.waiting "
             "/var/run/torjail-pf-guard.waiting.cancelled 2>/dev/null; then "
             '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -f /var/run/torjail-pf-guard.waiting.cancelled; '
             'else while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do sleep 1; done; fi')
CRON = "/etc/cron.d/torjail-bruteforce"
CACHE = "/var/cache/torjail/14.3-RELEASE-amd64"
RELEASE_URL = "https://download.freebsd.org/releases/amd64/14.3-RELEASE"
PINNED = "a" * 64  # the fixtures' jail_release_sha256
VERIFY_BASE = (f'if [ "$(sha256 -q {CACHE}/base.txz.part)" = {PINNED} ]; then mv -f {CACHE}/base.txz.part {CACHE}/base.txz; '
               f"else rm -f {CACHE}/base.txz.part; echo '{RELEASE_URL}/base.txz does not match the pinned sha256 "
               "(setting '\"'\"'jail_release_sha256'\"'\"')' >&2; exit 1; fi")
SWAP_FSTAB = ("sed -i.BACKUP 's/^\\/dev\\/ada0p3[[:space:]].*$/\\/dev\\/ada0p3.eli\tnone\tswap\t"
              "sw,ealgo=AES-XTS,keylen=256,sectorsize=4096\t0\t0/' /etc/fstab && rm -f /etc/fstab.BACKUP")

# Every command on a half-made image first checks on the server that the marker names that very image.
BELONGS = ('if ! { [ -f /var/jails/tor.img ] && [ "$(head -n 1 /var/jails/tor.img.torjail-incomplete 2>/dev/null)" '
           '= "$(tail -c 512 /var/jails/tor.img | sha256)" ]; }; then echo \'torjail: /var/jails/tor.img is not the '
           'half-made image that /var/jails/tor.img.torjail-incomplete names: not touching it\' >&2; exit 1; fi; ')
RECORD = "/var/db/torjail/images/var/jails/tor.img"
NEW_IMAGE = [
    "test -d /var/jails || install -d -m 0700 /var/jails",
    "if [ -e /var/jails/tor.img ]; then echo '/var/jails/tor.img exists: not creating it again' >&2; exit 1; fi; "
    f"if [ -e {MARKER} ]; then echo '{MARKER} exists without its image: not making one' >&2; exit 1; fi; "
    "sector=$(od -An -N256 -tx1 /dev/random | tr -d ' \\n') && "
    f'printf %s "$sector" | sha256 > {MARKER} && truncate -s 8G /var/jails/tor.img && '
    'printf %s "$sector" | dd of=/var/jails/tor.img bs=512 seek=$(($(stat -f %z /var/jails/tor.img) / 512 - 1)) '
    "conv=notrunc 2>/dev/null",
    f"{BELONGS}mdconfig -a -t vnode -f /var/jails/tor.img -u 10",
    f"{BELONGS}geli init -e AES-XTS -l 256 -s 4096 -B none -J - md10 && tail -c 512 /var/jails/tor.img | sha256 "
    f"> {MARKER} {STDIN_MARK}",
    f"{BELONGS}geli attach -j - md10 {STDIN_MARK}",
    f"{BELONGS}newfs -U /dev/md10.eli && mkdir -p /var/db/torjail/images/var/jails && echo 'torjail made an "
    "encrypted image at /var/jails/tor.img. While this file exists, a deploy that finds no image there stops "
    f"instead of making a new, empty one.' > {RECORD} && rm -f {MARKER}",
]



def written(path: str) -> str:
    """The commands that write a host file's content (sent inline) readable by root only, at its staging path."""
    return f"{{ rm -f {path}.torjail-new ; }} && {{ ( umask 077 && printf %s CONTENT > {path}.torjail-new ) ; }}"


def placed(path: str, mode: str, owner: str = "") -> str:
    """A host file written, given its owner and mode and moved into place (torjail.procedures.files.put)."""
    chown = f"{{ chown {owner} {path}.torjail-new ; }} && " if owner else ""
    return (f"{written(path)} && {chown}{{ chmod {mode} {path}.torjail-new ; }} && "
            f"{{ mv -f {path}.torjail-new {path} ; }}")


# pf.conf written at its staging path, checked, the previous one kept and the new one moved in: one remote command
PF_CONF_CHECKED_AND_MOVED = (
    written("/etc/pf.conf") + " && "
    "{ chown root:wheel /etc/pf.conf.torjail-new ; } && { chmod 600 /etc/pf.conf.torjail-new ; } && "
    "{ pfctl -n -f /etc/pf.conf.torjail-new || { rm -f /etc/pf.conf.torjail-new ; exit 1 ; } ; } && "
    "{ if [ -f /etc/pf.conf ]; then cp -p /etc/pf.conf /etc/pf.conf.torjail-previous; fi ; } && "
    "{ mv -f /etc/pf.conf.torjail-new /etc/pf.conf ; }")

FRESH_SERVER = [
    # base: pkg from the configured branch, relay sysctls, kernel modules now and at boot, no crash dumps, ntpd
    "{ mkdir -p /usr/local/etc/pkg/repos ; } && " + placed("/usr/local/etc/pkg/repos/FreeBSD.conf", "644"),
    "env ASSUME_ALWAYS_YES=yes pkg bootstrap -y",
    "{ sysctl net.inet.ip.random_id=1 kern.ipc.somaxconn=4096 kern.ipc.nmbclusters=262144 kern.maxfiles=65536 ; }"
    " && { echo net.inet.ip.random_id=1 >> /etc/sysctl.conf ; } && { echo kern.ipc.somaxconn=4096 >> /etc/sysctl.conf"
    " ; } && { echo kern.ipc.nmbclusters=262144 >> /etc/sysctl.conf ; } && { echo kern.maxfiles=65536 >>"
    " /etc/sysctl.conf ; }",
    "{ kldload -n geom_eli pf pflog ; } && { sysrc -f /boot/loader.conf geom_eli_load=YES pf_load=YES pflog_load=YES ; }",
    "sysrc -f /etc/rc.conf dumpdev=NO savecore_enable=NO",
    "dumpon off",
    "sysrc -f /etc/rc.conf ntpd_enable=YES ntpd_sync_on_start=YES",
    "service ntpd start",
    # swap: the fstab entry becomes .eli, and the live swap moves over (there is memory to spare)
    SWAP_FSTAB,
    "swapoff /dev/ada0p3",
    "geli onetime -d -e AES-XTS -l 256 -s 4096 /dev/ada0p3",
    "swapon /dev/ada0p3.eli",
    # vault: a new image, its marker first; GELI with the passphrase on standard input; newfs drops the marker
    *NEW_IMAGE,
    "{ mkdir -p /var/jails/tor ; } && { chmod 755 /var/jails/tor ; }",
    "mount -t ufs -o nosuid /dev/md10.eli /var/jails/tor",
    # jail: base.txz fetched and checked against the pinned sha256 (never the mirror's MANIFEST), unpacked; host files copied in and jail files
    # written by the host's shell, refused where a symbolic link would redirect them (the jail is not running)
    f"{{ mkdir -p {CACHE} ; }} && {{ fetch -q -o {CACHE}/base.txz.part {RELEASE_URL}/base.txz ; }} && "
    f"{{ {VERIFY_BASE} ; }}",
    "lockf -k -t 900 /var/run/torjail-unpack.lock sh -c 'if [ -L /var/jails/tor/.torjail-base ]; then exit 1; fi; "
    "if [ -e /var/jails/tor/.torjail-base ]; then [ \"$(cat /var/jails/tor/.torjail-base)\" = 14.3-RELEASE ]; exit; "
    f"fi; tar -x -f {CACHE}/base.txz -C /var/jails/tor --unlink && echo 14.3-RELEASE > /var/jails/tor/.torjail-base'",
    "/bin/sh -c 'R=/var/jails/tor; for p in /var/jails/tor/etc /var/jails/tor/etc/resolv.conf /var/jails/"
    'tor/etc/resolv.conf.torjail-new; do if [ -L "$p" ]; then echo "$p is a symbolic link in the jail roo'
    't /var/jails/tor: not written through" >&2; exit 1; fi; done; set -e; mkdir -p "$R"/etc; rm -f "$R"/'
    'etc/resolv.conf.torjail-new; umask 077; cat > "$R"/etc/resolv.conf.torjail-new; chmod 644 "$R"/etc/r'
    'esolv.conf.torjail-new; mv -f "$R"/etc/resolv.conf.torjail-new "$R"/etc/resolv.conf\' < /etc/resolv.c'
    'onf',
    "/bin/sh -c 'R=/var/jails/tor; for p in /var/jails/tor/etc /var/jails/tor/etc/localtime /var/jails/to"
    'r/etc/localtime.torjail-new; do if [ -L "$p" ]; then echo "$p is a symbolic link in the jail root /v'
    'ar/jails/tor: not written through" >&2; exit 1; fi; done; set -e; mkdir -p "$R"/etc; rm -f "$R"/etc/'
    'localtime.torjail-new; umask 077; cat > "$R"/etc/localtime.torjail-new; chmod 644 "$R"/etc/localtime'
    '.torjail-new; mv -f "$R"/etc/localtime.torjail-new "$R"/etc/localtime\' < /etc/localtime',
    "printf %s CONTENT | /bin/sh -c 'R=/var/jails/tor; for p in /var/jails/tor/etc /var/jails/tor/etc"
    '/rc.conf /var/jails/tor/etc/rc.conf.torjail-new; do if [ -L "$p" ]; then echo "$p is a symbolic '
    'link in the jail root /var/jails/tor: not written through" >&2; exit 1; fi; done; set -e; mkdir '
    '-p "$R"/etc; rm -f "$R"/etc/rc.conf.torjail-new; umask 077; cat > "$R"/etc/rc.conf.torjail-new; '
    'chmod 644 "$R"/etc/rc.conf.torjail-new; mv -f "$R"/etc/rc.conf.torjail-new "$R"/etc/rc.conf\'',
    "printf %s CONTENT | /bin/sh -c 'R=/var/jails/tor; for p in /var/jails/tor/usr /var/jails/tor/usr"
    '/local /var/jails/tor/usr/local/etc /var/jails/tor/usr/local/etc/pkg /var/jails/tor/usr/local/et'
    'c/pkg/repos /var/jails/tor/usr/local/etc/pkg/repos/FreeBSD.conf /var/jails/tor/usr/local/etc/pkg'
    '/repos/FreeBSD.conf.torjail-new; do if [ -L "$p" ]; then echo "$p is a symbolic link in the jail'
    ' root /var/jails/tor: not written through" >&2; exit 1; fi; done; set -e; mkdir -p "$R"/usr/loca'
    'l/etc/pkg/repos; rm -f "$R"/usr/local/etc/pkg/repos/FreeBSD.conf.torjail-new; umask 077; cat > "'
    '$R"/usr/local/etc/pkg/repos/FreeBSD.conf.torjail-new; chmod 644 "$R"/usr/local/etc/pkg/repos/Fre'
    'eBSD.conf.torjail-new; mv -f "$R"/usr/local/etc/pkg/repos/FreeBSD.conf.torjail-new "$R"/usr/loca'
    "l/etc/pkg/repos/FreeBSD.conf'",
    # the jail's newsyslog rotates tor's log (files/tor-newsyslog.conf)
    "printf %s CONTENT | /bin/sh -c 'R=/var/jails/tor; for p in /var/jails/tor/usr /var/jails/tor/usr"
    '/local /var/jails/tor/usr/local/etc /var/jails/tor/usr/local/etc/newsyslog.conf.d /var/jails/tor'
    '/usr/local/etc/newsyslog.conf.d/tor.conf /var/jails/tor/usr/local/etc/newsyslog.conf.d/tor.conf.'
    'torjail-new; do if [ -L "$p" ]; then echo "$p is a symbolic link in the jail root /var/jails/tor'
    ': not written through" >&2; exit 1; fi; done; set -e; mkdir -p "$R"/usr/local/etc/newsyslog.conf'
    '.d; rm -f "$R"/usr/local/etc/newsyslog.conf.d/tor.conf.torjail-new; umask 077; cat > "$R"/usr/lo'
    'cal/etc/newsyslog.conf.d/tor.conf.torjail-new; chmod 644 "$R"/usr/local/etc/newsyslog.conf.d/tor'
    '.conf.torjail-new; mv -f "$R"/usr/local/etc/newsyslog.conf.d/tor.conf.torjail-new "$R"/usr/local'
    "/etc/newsyslog.conf.d/tor.conf'",
    # the jail's cron runs that newsyslog and nothing else (files/jail-crontab)
    "printf %s CONTENT | /bin/sh -c 'R=/var/jails/tor; for p in /var/jails/tor/etc /var/jails/tor/etc"
    '/crontab /var/jails/tor/etc/crontab.torjail-new; do if [ -L "$p" ]; then echo "$p is a symbolic '
    'link in the jail root /var/jails/tor: not written through" >&2; exit 1; fi; done; set -e; mkdir '
    '-p "$R"/etc; rm -f "$R"/etc/crontab.torjail-new; umask 077; cat > "$R"/etc/crontab.torjail-new; '
    'chmod 644 "$R"/etc/crontab.torjail-new; mv -f "$R"/etc/crontab.torjail-new "$R"/etc/crontab\'',
    "{ mkdir -p /etc/jail.conf.d ; } && { chown root:wheel /etc/jail.conf.d ; } && "
    + placed("/etc/jail.conf.d/tor.conf", "644", "root:wheel"),
    "sysrc -f /etc/rc.conf cloned_interfaces=lo1 'ifconfig_lo1_alias0=inet 10.0.0.1/32' jail_enable=YES",
    "{ ifconfig lo1 create ; } && { ifconfig lo1 inet 10.0.0.1/32 alias ; }",
    # tor: installed by the host's pkg under the root (-r, never -c), its directories, torrc (checked by preflight)
    'env ASSUME_ALWAYS_YES=yes pkg -r /var/jails/tor install -y tor',
    "/bin/sh -c 'R=/var/jails/tor; for p in /var/jails/tor/var /var/jails/tor/var/db /var/jails/tor/var/d"
    'b/tor; do if [ -L "$p" ]; then echo "$p is a symbolic link in the jail root /var/jails/tor: not writ'
    'ten through" >&2; exit 1; fi; done; set -e; mkdir -p "$R"/var/db/tor; chown 256:256 "$R"/var/db/tor;'
    ' chmod 700 "$R"/var/db/tor\'',
    "/bin/sh -c 'R=/var/jails/tor; for p in /var/jails/tor/var /var/jails/tor/var/log /var/jails/tor/var/"
    'log/tor; do if [ -L "$p" ]; then echo "$p is a symbolic link in the jail root /var/jails/tor: not wr'
    'itten through" >&2; exit 1; fi; done; set -e; mkdir -p "$R"/var/log/tor; chown 256:256 "$R"/var/log/'
    'tor; chmod 700 "$R"/var/log/tor\'',
    "printf %s CONTENT | /bin/sh -c 'R=/var/jails/tor; for p in /var/jails/tor/usr /var/jails/tor/usr"
    '/local /var/jails/tor/usr/local/etc /var/jails/tor/usr/local/etc/tor /var/jails/tor/usr/local/et'
    'c/tor/torrc /var/jails/tor/usr/local/etc/tor/torrc.torjail-new; do if [ -L "$p" ]; then echo "$p'
    ' is a symbolic link in the jail root /var/jails/tor: not written through" >&2; exit 1; fi; done;'
    ' set -e; mkdir -p "$R"/usr/local/etc/tor; rm -f "$R"/usr/local/etc/tor/torrc.torjail-new; umask '
    '077; cat > "$R"/usr/local/etc/tor/torrc.torjail-new; chown 0:0 "$R"/usr/local/etc/tor/torrc.torj'
    'ail-new; chmod 644 "$R"/usr/local/etc/tor/torrc.torjail-new; mv -f "$R"/usr/local/etc/tor/torrc.'
    'torjail-new "$R"/usr/local/etc/tor/torrc\'',
    # the jail mounts its own root: the deploy's mount goes before jail -c
    "umount /var/jails/tor",
    "jail -f /etc/jail.conf.d/tor.conf -c tor",
    # firewall: pf.conf checked, the previous one kept, guarded load, SSH check, cancel
    PF_CONF_CHECKED_AND_MOVED,
    GUARD_PF_OFF,
    "pfctl -f /etc/pf.conf",
    "daemon -f sh -c 'sleep 2; pfctl -e'",
    "function fresh_ssh_login",
    CANCEL,
    # cron lets addresses out of <bruteforce> after sshd_block_seconds; it runs (FreeBSD's default), so the
    # deploy only says so in rc.conf
    "sysrc -f /etc/rc.conf pf_enable=YES pf_rules=/etc/pf.conf pflog_enable=YES cron_enable=YES",
    "service pflog start",
    placed(CRON, "644"),
]


# --- fixtures and helpers -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def passphrase(monkeypatch):
    monkeypatch.setenv("TORJAIL_GELI_PASSPHRASE", PASSPHRASE)
    monkeypatch.setattr(secrets, "_CACHE", {})


def _merge_facts(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        current = merged.get(key)
        with_arguments = isinstance(value, dict) and value and all("=" in name for name in value)
        if with_arguments and isinstance(current, dict):
            current.update(copy.deepcopy(value))
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def server(name: str) -> dict:
    """The fixture fixtures/NAME.yaml as {"data": ..., "facts": ...}, its `extends` and `generated` resolved."""
    fixture = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text(encoding="utf-8"))
    if "extends" in fixture:
        base = server(fixture["extends"])
        return {"data": {**base["data"], **fixture.get("data", {})},
                "facts": _merge_facts(base["facts"], fixture.get("facts", {}))}
    settings = build_settings("server", fixture["data"]).with_ext_if(EXT_IF)  # as preflight resolves it
    rendered = {path: render_file(settings, template) for path, _, template in planned_files(settings)}
    rendered[firewall.BRUTEFORCE_CRON] = render_file(settings, "bruteforce.cron.j2")
    rendered[settings.jail_root + jail.NEWSYSLOG_PATH] = jail.NEWSYSLOG_SOURCE.read_text()
    rendered[settings.jail_root + jail.CRONTAB_PATH] = jail.CRONTAB_SOURCE.read_text()
    sums = fixture["facts"].get("files.Sha1File", {})
    for key, value in sums.items():
        if value == "generated":
            sums[key] = hashlib.sha1(rendered[key.removeprefix("path=")].encode()).hexdigest()
    return fixture


def plan_server(name: str, deploy=DEPLOY, **facts):
    """Plan a deploy file against fixtures/NAME.yaml; keyword arguments replace (or merge into) its facts."""
    fixture = server(name)
    return plan(deploy, data=fixture["data"], facts=_merge_facts(fixture["facts"], facts))


# a file's content sent inside the command that writes it into the jail (torjail.freebsd.jailfs.put)
INLINE_CONTENT = re.compile(r"printf %s '(?:[^']|'\"'\"')*'")


def stable(commands: list[str]) -> list[str]:
    """Commands with the timestamp of pyinfra's sed backup file replaced by BACKUP, and a jail file's content sent
    inline by CONTENT (the rendering tests and the host checks read what it holds)."""
    return [INLINE_CONTENT.sub("printf %s CONTENT",
                               re.sub(r"(sed -i\.)(\d+)(.* rm -f \S+\.)\2\b", r"\1BACKUP\3BACKUP", command))
            for command in commands]


def operation(result, name: str):
    (found,) = [op for op in result.operations if op.name == name]
    return found


def execute(result, changed: set[str]) -> dict[str, list[str]]:
    """The commands each operation would run at execution if exactly the operations named in `changed` had made
    a change by then (what `_if=` conditions see), by operation name."""
    state, host = result.state, result.host
    for op_hash in state.get_op_order():
        names = set(state.get_op_meta(op_hash).names)
        result_meta = state.get_op_data_for_host(host, op_hash).operation_meta
        if not result_meta.is_complete():
            result_meta.set_complete(True, ["a command"] if names & changed else [], None)
    executed = result.pyinfra_commands(executing=True)
    return {op.name: [str(command) for command in commands] for op, commands in zip(result.operations, executed)}


@pytest.fixture
def planned_operations():
    """The names of operations added to any pyinfra state while the test runs."""
    added = []
    original = State.set_op_data_for_host

    def record(self, host, op_hash, op_data):
        added.append(op_hash)
        return original(self, host, op_hash, op_data)

    with mock.patch.object(State, "set_op_data_for_host", record):
        yield added


def _is_destructive(command: str) -> bool:
    return bool(re.search(r"\bgeli init\b|\bnewfs\b", command))


# --- a fresh server, a converged one --------------------------------------------------------------------------


def test_fresh_server_gets_every_step_in_order():
    """The whole deploy on a fresh server, command by command: the order is the design (modules before GELI,
    swap before the image, the root populated before the jail starts, pf last under its guard)."""
    result = plan_server("deploy_fresh")
    assert stable(result.commands) == FRESH_SERVER


def test_fresh_server_sends_the_passphrase_only_to_geli_on_standard_input():
    result = plan_server("deploy_fresh")
    fed = [(command.get_raw_value(), command.connector_arguments.get("_stdin"))
           for commands in result.pyinfra_commands() for command in commands
           if hasattr(command, "connector_arguments") and command.connector_arguments.get("_stdin") is not None]
    assert [(text.removeprefix(BELONGS), stdin) for text, stdin in fed] == [
        (f"geli init -e AES-XTS -l 256 -s 4096 -B none -J - md10 && tail -c 512 /var/jails/tor.img | sha256 > {MARKER}",
         PASSPHRASE),
        ("geli attach -j - md10", PASSPHRASE),
    ]


def test_converged_server_changes_nothing():
    result = plan_server("deploy_converged")
    assert [(op.name, op.commands) for op in result.changed] == []
    assert all(op.noops for op in result.operations), "every operation says why it has nothing to do"


# --- an existing image: locked, unlocked, half-made, unknown --------------------------------------------------


JAIL_FILE = "jailfs.FileAttributes"
ROOT_OWNED = {"mode": "644", "user": "0", "group": "0"}


@pytest.mark.parametrize("found, command", [
    ({**ROOT_OWNED, "mode": "666"}, "chmod 644"),
    ({**ROOT_OWNED, "user": "256"}, "chown 0:0"),
    ({**ROOT_OWNED, "group": "256"}, "chown 0:0"),
], ids=["mode", "owner", "group"])
def test_torrc_of_the_right_content_gets_only_its_mode_or_owner_back(found, command):
    """A torrc tor's own user could rewrite (SAVECONF) or anyone could read differs from the placed one only in its
    mode or owner: exactly a chmod or chown, inside the running jail, and no reload (tor reads the same file)."""
    result = plan_server("deploy_converged", **{JAIL_FILE: {f"path={TORRC}": found}})
    target = '"$R"/usr/local/etc/tor/torrc'
    assert [(op.name, op.commands) for op in result.changed] == [
        ("torrc (checked by tor --verify-config in the jail)",
         [f"jexec tor /bin/sh -c 'R=; set -e; {command} {target}'"]),
    ]


def test_a_jail_file_with_mode_and_owner_wrong_gets_both_through_the_hosts_guarded_shell():
    """A stopped jail's file is corrected by the host's shell, which first refuses a link planted on the way (chmod
    and chown follow links: one the jail planted would lead them onto the host)."""
    placed = server("deploy_converged")["facts"]["files.Sha1File"][f"path={TORRC}"]
    result = plan_server("deploy_unlocked_not_running", **{"files.Sha1File": {f"path={TORRC}": placed},
                                                           JAIL_FILE: {f"path={TORRC}": {"mode": "600", "user": "1001",
                                                                                          "group": "0"}}})
    (fixed,) = [op for op in result.changed if op.name == "torrc (checked by tor --verify-config in the jail)"]
    parts = " ".join(f"/var/jails/tor/usr{part}" for part in ("", "/local", "/local/etc", "/local/etc/tor",
                                                             "/local/etc/tor/torrc"))
    assert fixed.commands == [
        f"/bin/sh -c 'R=/var/jails/tor; for p in {parts}; do if [ -L \"$p\" ]; then echo \"$p is a symbolic "
        "link in the jail root /var/jails/tor: not written through\" >&2; exit 1; fi; done; set -e; "
        "chown 0:0 \"$R\"/usr/local/etc/tor/torrc; chmod 644 \"$R\"/usr/local/etc/tor/torrc'"]


@pytest.mark.parametrize("found, command", [
    ({"user": "root", "group": "wheel", "mode": 644}, "chmod 600 /etc/pf.conf"),
    ({"user": "operator", "group": "wheel", "mode": 600}, "chown root:wheel /etc/pf.conf"),
    ({"user": "root", "group": "operator", "mode": 600}, "chown root:wheel /etc/pf.conf"),
], ids=["mode", "owner", "group"])
def test_pf_conf_of_the_right_content_gets_only_its_mode_or_owner_back(found, command):
    """pf.conf names the admins' networks and is root's alone: a wrong mode or owner is exactly a chmod or chown, as
    pyinfra's files.put makes it, and no ruleset load (pf runs the same rules)."""
    result = plan_server("deploy_converged", **{"files.File": {"path=/etc/pf.conf": found}})
    assert [(op.name, op.commands) for op in result.changed] == [("pf.conf (checked by pfctl -nf)", [command])]


def test_jail_conf_of_the_right_content_gets_only_its_owner_back():
    """pyinfra's files.put places the jail.conf.d file: its owner is compared too, now that the deploy names it."""
    result = plan_server("deploy_converged",
                         **{"files.File": {"path=/etc/jail.conf.d/tor.conf": {"user": "operator", "group": "wheel",
                                                                              "mode": 644, "size": 700}}})
    assert [(op.name, op.commands) for op in result.changed] == [
        ("jail.conf.d/tor.conf", ["chown root:wheel /etc/jail.conf.d/tor.conf"])]


def test_locked_image_stops_the_deploy_before_any_operation(planned_operations):
    with pytest.raises(VaultLocked, match=r"server: /var/jails/tor.img is locked .* run `pyinfra inventory.py "
                                          r"unlock.py` first, then deploy again"):
        plan_server("deploy_locked")
    assert planned_operations == []


def test_unlocked_running_server_never_touches_the_vault():
    result = plan_server("deploy_converged")
    vault = [op for op in result.operations if op.name in (
        "Mount point /var/jails/tor", "Jail root md10.eli on /var/jails/tor")]
    assert len(vault) == 2 and all(not op.commands for op in vault)
    assert not [command for command in result.commands if _is_destructive(command) or "mdconfig" in command]
    assert not any(op.name.startswith(("GELI on", "Image ", "UFS on")) for op in result.operations)


def test_unlocked_image_with_the_jail_stopped_is_mounted_and_the_jail_started():
    """After an interrupted deploy: the image is attached but nothing is mounted. The deploy mounts it, carries
    on into the mounted root, hands it back and starts the jail; it never creates anything in the vault."""
    result = plan_server("deploy_unlocked_not_running")
    commands = result.commands
    assert not [command for command in commands if _is_destructive(command) or "mdconfig" in command]
    assert commands.index("mount -t ufs -o nosuid /dev/md10.eli /var/jails/tor") < commands.index(
        "env ASSUME_ALWAYS_YES=yes pkg -r /var/jails/tor install -y tor")
    assert [command for command in commands if "/var/jails/tor" in command][0] == (
        "mount -t ufs -o nosuid /dev/md10.eli /var/jails/tor")
    torrc = operation(result, "torrc (checked by tor --verify-config in the jail)")
    assert not [command for command in commands if "chroot" in command or "--verify-config" in command]
    assert stable(torrc.commands)[0].startswith(
        "printf %s CONTENT | /bin/sh -c 'R=/var/jails/tor; for p in /var/jails/tor/usr ")
    after_torrc = commands[commands.index(torrc.commands[-1]) + 1:]
    assert after_torrc[:2] == ["umount /var/jails/tor", "jail -f /etc/jail.conf.d/tor.conf -c tor"]


def test_half_made_image_is_discarded_then_made_again():
    """A first deploy stopped between geli init and newfs left the image with its marker: it never held data,
    so it is thrown away (every command re-checks the marker on the server) and made again in the same run."""
    result = plan_server("deploy_half_made")
    discard = operation(result, "Discard a half-made image")
    assert discard.commands == [
        f"{BELONGS}geli detach md10.eli",
        f"{BELONGS}mdconfig -d -u 10",
        f"{BELONGS}rm -f /var/jails/tor.img && rm -f {MARKER}",
    ]
    commands = result.commands
    start = commands.index(discard.commands[-1]) + 1
    assert commands[start:start + len(NEW_IMAGE)] == NEW_IMAGE
    assert commands[start + len(NEW_IMAGE):start + len(NEW_IMAGE) + 2] == [
        "{ mkdir -p /var/jails/tor ; } && { chmod 755 /var/jails/tor ; }",
        "mount -t ufs -o nosuid /dev/md10.eli /var/jails/tor"]
    assert all(command.startswith(BELONGS) for command in commands if _is_destructive(command))


def test_image_without_geli_metadata_stops_the_deploy(planned_operations):
    with pytest.raises(VaultError, match="exists but carries no GELI metadata: torjail cannot identify it"):
        plan_server("deploy_unknown_image")
    assert planned_operations == []


# --- torrc and pf.conf changes on a running server ------------------------------------------------------------


def test_changed_torrc_is_verified_in_the_running_jail_then_reloaded():
    result = plan_server("deploy_converged", **{"files.Sha1File": {f"path={TORRC}": "0" * 40}})
    # the new torrc goes to the server inside the command that writes it: no upload, no copy in the host's /tmp
    sent = INLINE_CONTENT.match(result.changed[0].commands[0]).group(0)
    assert shlex.split(sent)[:2] == ["printf", "%s"] and "\nNickname TestRelay\n" in shlex.split(sent)[2]
    assert [(op.name, stable(op.commands)) for op in result.changed] == [
        ("torrc (checked by tor --verify-config in the jail)", [
            'printf %s CONTENT | jexec tor /bin/sh -c \'R=; set -e; mkdir -p "$R"/usr/local/etc/tor; rm -f "$R'
            '"/usr/local/etc/tor/torrc.torjail-new; umask 077; cat > "$R"/usr/local/etc/tor/torrc.torjail-new'
            '; chown 0:0 "$R"/usr/local/etc/tor/torrc.torjail-new; chmod 644 "$R"/usr/local/etc/tor/torrc.tor'
            'jail-new; { /usr/local/bin/tor --verify-config -f /usr/local/etc/tor/torrc.torjail-new --User _t'
            'or || { rm -f /usr/local/etc/tor/torrc.torjail-new; exit 1; }; }; touch "$R"/usr/local/etc/tor/t'
            'orrc.torjail-reload; mv -f "$R"/usr/local/etc/tor/torrc.torjail-new "$R"/usr/local/etc/tor/torrc'
            "'",
        ]),
        ("Reload tor (torrc changed)", [RELOAD]),
    ]
    assert operation(result, "Reload tor (torrc changed)").conditional


def test_a_reload_owed_by_an_interrupted_deploy_is_made_with_torrc_unchanged():
    """A deploy stopped between the new torrc and tor's reload left the marker: tor still runs the old torrc."""
    result = plan_server("deploy_converged", **{"files.File": {f"path={TORRC}.torjail-reload": {"size": 0}}})
    assert [(op.name, op.commands, op.conditional) for op in result.changed] == [
        ("Reload tor (torrc changed)", [RELOAD], False)]


@pytest.mark.parametrize("torrc_changed", [True, False])
def test_tor_reload_follows_the_torrc_operation(torrc_changed):
    """At execution the reload runs only if the torrc operation did change the file (a failed or skipped
    check leaves tor running on the old one)."""
    result = plan_server("deploy_converged", **{"files.Sha1File": {f"path={TORRC}": "0" * 40}})
    changed = {"torrc (checked by tor --verify-config in the jail)"} if torrc_changed else set()
    ran = execute(result, changed)
    assert ran["Reload tor (torrc changed)"] == ([RELOAD] if torrc_changed else [])


def test_unchanged_torrc_plans_no_reload():
    result = plan_server("deploy_converged")
    assert "Reload tor (torrc changed)" not in [op.name for op in result.operations]


GUARDED = ["Load pf.conf under a rollback guard", "A fresh SSH login still works",
           "Keep the new ruleset (cancel the rollback)"]


def test_changed_pf_conf_on_a_running_firewall_is_loaded_under_the_guard():
    result = plan_server("deploy_converged", **{"files.Sha1File": {"path=/etc/pf.conf": "0" * 40}})
    assert [(op.name, stable(op.commands)) for op in result.changed] == [
        ("pf.conf (checked by pfctl -nf)", [PF_CONF_CHECKED_AND_MOVED]),
        (GUARDED[0], [GUARD, "pfctl -f /etc/pf.conf"]),
        (GUARDED[1], ["function fresh_ssh_login"]),
        (GUARDED[2], [CANCEL]),
    ]
    assert all(operation(result, name).conditional for name in GUARDED)


@pytest.mark.parametrize("pf_conf_changed", [True, False])
def test_guarded_load_follows_the_pf_conf_operation(pf_conf_changed):
    result = plan_server("deploy_converged", **{"files.Sha1File": {"path=/etc/pf.conf": "0" * 40}})
    ran = execute(result, {"pf.conf (checked by pfctl -nf)"} if pf_conf_changed else set())
    assert [bool(ran[name]) for name in GUARDED] == [pf_conf_changed] * 3


def test_unchanged_pf_conf_with_pf_enabled_plans_no_load():
    result = plan_server("deploy_converged")
    assert not set(GUARDED) & {op.name for op in result.operations}


def test_unchanged_pf_conf_with_a_guard_still_waiting_is_confirmed():
    """An earlier deploy stopped between the load and the cancel: its guard would roll the ruleset back later."""
    result = plan_server("deploy_converged", **{"pfguard.PfGuard": 4242})
    assert [(op.name, op.commands, op.conditional) for op in result.changed] == [
        ("Stop the rollback guard an earlier deploy left waiting", [SUPERSEDE], False),
        (GUARDED[0], [GUARD, "pfctl -f /etc/pf.conf"], False),
        (GUARDED[1], ["function fresh_ssh_login"], False),
        (GUARDED[2], [CANCEL], False),
    ]


def test_unchanged_pf_conf_with_pf_disabled_is_loaded_and_enabled():
    result = plan_server("deploy_converged", **{"pf.PfStatus": {"loaded": True, "enabled": False, "debug": None}})
    assert [(op.name, op.commands, op.conditional) for op in result.changed] == [
        (GUARDED[0], [GUARD_PF_OFF, "pfctl -f /etc/pf.conf", "daemon -f sh -c 'sleep 2; pfctl -e'"], False),
        (GUARDED[1], ["function fresh_ssh_login"], False),
        (GUARDED[2], [CANCEL], False),
    ]


class PfEnabledConnector:
    """A new connection to a server whose pf is enabled (what the SSH login check asks)."""

    def __init__(self, state, host):
        pass

    def connect(self):
        pass

    def run_shell_command(self, command, **arguments):
        return True, mock.Mock(stdout_lines=["Status: Enabled for 0 days 00:00:02           Debug: Urgent",
                                              pfguard.GUARD_WAITING])

    def disconnect(self):
        pass


def test_ssh_login_check_runs_as_pyinfra_calls_it(monkeypatch):
    """pyinfra calls the check with its state and host; anything more given to python.call breaks the call, the
    check fails and the guard rolls the new ruleset back on every deploy."""
    monkeypatch.setattr(pfguard.time, "sleep", lambda seconds: None)
    result = plan_server("deploy_fresh")
    (check,) = [command for commands in result.pyinfra_commands() for command in commands
                if isinstance(command, FunctionCommand)]
    result.host.connector_cls = PfEnabledConnector
    check.execute(result.state, result.host, {})
    assert isinstance(result.host.connector, PfEnabledConnector)


# --- settings -------------------------------------------------------------------------------------------------


def test_invalid_setting_stops_the_deploy_before_any_operation(planned_operations):
    fixture = server("deploy_fresh")
    with pytest.raises(SettingsError) as error:
        plan(DEPLOY, facts=fixture["facts"], data={**fixture["data"], "md_unit": 100, "relay_nickname": "no spaces"})
    assert error.value.problems == [
        "server: setting 'relay_nickname': expected 1-19 letters or digits (tor's rule), got 'no spaces'",
        "server: setting 'md_unit': expected an md unit number 0-99, got 100",
    ]
    assert planned_operations == []


def test_a_generated_file_failing_its_check_stops_the_deploy_before_any_operation(planned_operations, monkeypatch):
    """A pf.conf template edited into something pfctl would reject never reaches the server."""
    from torjail import render

    real_render_file = render.render_file

    def broken_pf_conf(settings, template, family=None):
        text = real_render_file(settings, template, family)
        return text.replace("block log all", "block log al") if template == "pf.conf.j2" else text

    monkeypatch.setattr(render, "render_file", broken_pf_conf)
    fixture = server("deploy_fresh")
    with pytest.raises(PyinfraError, match=r"server: generated files are invalid, nothing was changed: /etc/pf.conf: "):
        plan(DEPLOY, facts=fixture["facts"], data=fixture["data"])
    assert planned_operations == []
