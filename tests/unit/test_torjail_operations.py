"""The deploy's own FreeBSD operations and facts (files, image, mount, net, pfguard, pkg, release, service,
system): the commands each yields or why it does nothing, the facts' parsing of FreeBSD output, and the shell
programs that carry the safety (marker guards, checked files, the pf rollback guard, the unlock with a wrong
passphrase) run for real in /bin/sh with stand-ins for the FreeBSD-only tools.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyinfra.api import FunctionCommand, HiddenValue, OperationError, OperationValueError
from pyinfra.api.exceptions import PyinfraError

from harness import STDIN_MARK, plan_calls, plan_operation

from torjail.freebsd import mount, net, pkg, service, staging, system
from torjail.procedures import deploylock, files, image, pfguard, release

IMAGE = "/var/jails/tor.img"
MARKER = IMAGE + image.MARKER_SUFFIX
SECRET = "correct horse battery staple"
MOUNTS = {"/": {"device": "/dev/ada0p2", "type": "ufs", "options": ["rw"]}}


def sh(script: str, tmp_path: Path, shims: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    """Run a command line in /bin/sh with stand-ins (shell scripts) for FreeBSD-only tools first in PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in (shims or {}).items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(tmp_path / "log")}
    return subprocess.run(["sh", "-c", script], input=stdin, capture_output=True, text=True, env=env, timeout=30,
                          cwd=tmp_path)


def logged(tmp_path: Path) -> list[str]:
    log = tmp_path / "log"
    return log.read_text().splitlines() if log.exists() else []


RECORD = 'echo "$(basename "$0") $*" >> "$LOG"\n'


# --- files ----------------------------------------------------------------------------------------------------


def test_checked_file_is_staged_checked_and_moved():
    op = plan_operation(files.checked, "/etc/pf.conf", "pass all\n", check=["pfctl", "-n", "-f", "{path}"],
                        mode="600", keep_previous="/etc/pf.conf.old",
                        facts={"files.Sha1File": {"path=/etc/pf.conf": None}})
    assert op.commands == [  # one remote command, the content in it: each step only when the one before succeeded
        "{ rm -f /etc/pf.conf.torjail-new ; } && "
        "{ ( umask 077 && printf %s 'pass all\n' > /etc/pf.conf.torjail-new ) ; } && "
        "{ chmod 600 /etc/pf.conf.torjail-new ; } && "
        "{ pfctl -n -f /etc/pf.conf.torjail-new || { rm -f /etc/pf.conf.torjail-new ; exit 1 ; } ; } && "
        "{ if [ -f /etc/pf.conf ]; then cp -p /etc/pf.conf /etc/pf.conf.old; fi ; } && "
        "{ mv -f /etc/pf.conf.torjail-new /etc/pf.conf ; }",
    ]
    assert op.uploads == {}


def test_checked_file_too_large_to_send_inline_is_uploaded_to_its_staging_path():
    content = "pass all\n" * (staging.INLINE_LIMIT // 9)
    op = plan_operation(files.checked, "/etc/pf.conf", content, check=["pfctl", "-n", "-f", "{path}"], mode="600",
                        facts={"files.Sha1File": {"path=/etc/pf.conf": None}})
    assert op.commands == [
        "upload /etc/pf.conf.torjail-new",
        "{ chmod 600 /etc/pf.conf.torjail-new ; } && "
        "{ pfctl -n -f /etc/pf.conf.torjail-new || { rm -f /etc/pf.conf.torjail-new ; exit 1 ; } ; } && "
        "{ mv -f /etc/pf.conf.torjail-new /etc/pf.conf ; }",
    ]
    assert op.uploads == {"/etc/pf.conf.torjail-new": content}


def test_checked_file_noop_when_the_content_is_there():
    op = plan_operation(files.checked, "/etc/pf.conf", "pass all\n", check=["true"],
                        facts={"files.Sha1File": {"path=/etc/pf.conf": files.content_sha1("pass all\n")},
                               "files.File": {"path=/etc/pf.conf": {"user": "root", "group": "wheel", "mode": 644}}})
    assert (op.commands, op.noops) == ([], ["/etc/pf.conf is already up to date"])


@pytest.mark.parametrize("found, commands", [
    ({"user": "root", "group": "wheel", "mode": 644}, ["chmod 600 /etc/pf.conf"]),
    ({"user": "toor", "group": "wheel", "mode": 600}, ["chown root:wheel /etc/pf.conf"]),
    ({"user": "toor", "group": "staff", "mode": 666}, ["{ chmod 600 /etc/pf.conf ; } && { chown root:wheel /etc/pf.conf ; }"]),
    (False, []),  # not a regular file (a link to the right content): left as it was, as before
])
def test_checked_file_of_the_right_content_gets_its_mode_and_owner_as_files_put_gives_them(found, commands):
    """No upload and no check for a file whose content is already right: only what differs, from the File fact."""
    op = plan_operation(files.checked, "/etc/pf.conf", "pass all\n", check=["false"], mode="600", user="root",
                        group="wheel",
                        facts={"files.Sha1File": {"path=/etc/pf.conf": files.content_sha1("pass all\n")},
                               "files.File": {"path=/etc/pf.conf": found}})
    assert op.commands == commands
    assert op.noops == ([] if commands else ["/etc/pf.conf is already up to date"])


def test_checked_file_quotes_owner_and_paths():
    op = plan_operation(files.checked, "/srv/my dir/torrc", "x\n", check=["tor", "-f", "{path}"], user="256",
                        group="256", facts={"files.Sha1File": {"path=/srv/my dir/torrc": None}})
    (command,) = op.commands
    assert " && { chown 256:256 '/srv/my dir/torrc.torjail-new' ; } && " in command
    assert "{ tor -f '/srv/my dir/torrc.torjail-new' || { rm -f '/srv/my dir/torrc.torjail-new' ; exit 1 ; } ; }" \
        in command


@pytest.mark.parametrize("accepted", [True, False])
def test_checked_file_check_decides_in_sh(tmp_path, accepted):
    """A rejected file is removed and the live one stays; an accepted one replaces it, the old one kept."""
    live = tmp_path / "pf.conf"
    live.write_text("old\n")
    op = plan_operation(files.checked, str(live), "new\n", check=["checker", "{path}"], keep_previous=f"{live}.prev",
                        facts={"files.Sha1File": {f"path={live}": "0" * 40}})
    (tmp_path / "pf.conf.torjail-new").write_text("left by an interrupted deploy\n")
    shims = {"checker": RECORD + ("exit 0\n" if accepted else "echo 'line 1: syntax error' >&2; exit 1\n")}
    (command,) = op.commands  # the content written, checked and moved into place: one remote command
    result = sh(command, tmp_path, shims)
    if accepted:
        assert result.returncode == 0
        assert (live.read_text(), Path(f"{live}.prev").read_text()) == ("new\n", "old\n")
    else:
        assert result.returncode == 1 and "syntax error" in result.stderr
        assert not Path(f"{live}.prev").exists()
        assert live.read_text() == "old\n" and not (tmp_path / "pf.conf.torjail-new").exists()
    assert logged(tmp_path) == [f"checker {tmp_path}/pf.conf.torjail-new"]


def test_copied_file():
    facts = {"files.Sha1File": {"path=/etc/resolv.conf": "a" * 40, "path=/jail/etc/resolv.conf": None}}
    op = plan_operation(files.copied, "/etc/resolv.conf", "/jail/etc/resolv.conf", facts=facts)
    assert op.commands == ["cp -p /etc/resolv.conf /jail/etc/resolv.conf"]
    facts["files.Sha1File"]["path=/jail/etc/resolv.conf"] = "a" * 40
    op = plan_operation(files.copied, "/etc/resolv.conf", "/jail/etc/resolv.conf", facts=facts)
    assert (op.commands, op.noops) == ([], ["/jail/etc/resolv.conf is already a copy of /etc/resolv.conf"])



JAIL_CONF = "/etc/jail.conf.d/tor.conf"
JAIL_CONF_TEXT = "tor { path = /var/jails/tor; }\n"
ROOT_644 = {"user": "root", "group": "wheel", "mode": 644}


def put_facts(found, sha1=files.content_sha1(JAIL_CONF_TEXT)):
    return {"files.File": {f"path={JAIL_CONF}": found}, "files.Sha1File": {f"path={JAIL_CONF}": sha1},
            "files.Directory": {"path=/etc/jail.conf.d": {"user": "root", "group": "wheel", "mode": 755},
                                f"path={JAIL_CONF}": None},
            "server.Which": {"command=md5sum": None, "command=sha1sum": None, "command=sha256sum": None}}


def test_put_file_already_as_wanted_is_known_from_the_readings():
    op = plan_operation(files.put, JAIL_CONF, JAIL_CONF_TEXT, mode="644", user="root", group="wheel",
                        facts=put_facts(ROOT_644))
    assert (op.commands, op.noops) == ([], [f"{JAIL_CONF} is already up to date"])


WRITTEN = ("{ rm -f /etc/jail.conf.d/tor.conf.torjail-new ; } && { ( umask 077 && printf %s 'tor { path = "
           "/var/jails/tor; }\n' > /etc/jail.conf.d/tor.conf.torjail-new ) ; } && "
           "{ chown root:wheel /etc/jail.conf.d/tor.conf.torjail-new ; } && "
           "{ chmod 644 /etc/jail.conf.d/tor.conf.torjail-new ; } && "
           "{ mv -f /etc/jail.conf.d/tor.conf.torjail-new /etc/jail.conf.d/tor.conf ; }")


@pytest.mark.parametrize("found, sha1, expected", [
    (None, None, [WRITTEN]),
    (ROOT_644, "0" * 40, [WRITTEN]),
    ({**ROOT_644, "mode": 600}, None, ["chmod 644 /etc/jail.conf.d/tor.conf"]),
    ({**ROOT_644, "user": "toor"}, None, ["chown root:wheel /etc/jail.conf.d/tor.conf"]),
], ids=["missing", "other content", "other mode", "other owner"])
def test_put_file_that_differs_gets_the_commands_of_pyinfras_files_put_in_one(found, sha1, expected):
    """The content goes inside the command (written readable by root only, then given its owner and mode, then
    moved into place), or only the mode or owner that differs is fixed."""
    facts = put_facts(found, sha1 or files.content_sha1(JAIL_CONF_TEXT))
    op = plan_operation(files.put, JAIL_CONF, JAIL_CONF_TEXT, mode="644", user="root", group="wheel", facts=facts)
    assert op.commands == expected and not op.uploads


def test_put_file_too_large_to_send_inline_is_uploaded_as_pyinfras_files_put_does():
    content = "x" * (staging.INLINE_LIMIT + 1)
    op = plan_operation(files.put, JAIL_CONF, content, mode="644", user="root", group="wheel",
                        facts=put_facts(None, None))
    assert op.commands == ["upload /etc/jail.conf.d/tor.conf",
                           "{ chown root:wheel /etc/jail.conf.d/tor.conf ; } && { chmod 644 /etc/jail.conf.d/tor.conf ; }"]
    assert op.uploads == {JAIL_CONF: content}


def test_directory_already_as_wanted_is_known_from_the_readings():
    facts = {"files.Directory": {"path=/var/jails/tor": {"user": "root", "group": "wheel", "mode": 755}}}
    op = plan_operation(files.directory, "/var/jails/tor", mode="755", facts=facts)
    assert (op.commands, op.noops) == ([], ["directory /var/jails/tor already exists"])


@pytest.mark.parametrize("found, expected", [
    (None, ["{ mkdir -p /var/jails/tor ; } && { chmod 755 /var/jails/tor ; }"]),
    ({"user": "root", "group": "wheel", "mode": 700}, ["chmod 755 /var/jails/tor"]),
], ids=["missing", "other mode"])
def test_directory_that_differs_goes_to_pyinfras_files_directory(found, expected):
    op = plan_operation(files.directory, "/var/jails/tor", mode="755",
                        facts={"files.Directory": {"path=/var/jails/tor": found}})
    assert op.commands == expected


# --- image ----------------------------------------------------------------------------------------------------

# FreeBSD's sha256 (a digest of standard input alone), stat -f %z and df -k, standing in for the real ones.
FREEBSD_SHIMS = {
    "sha256": '[ $# -eq 0 ] || { echo "sha256: unexpected arguments: $*" >&2; exit 1; }\n'
              "sha256sum | cut -d ' ' -f 1\n",
    "stat": '[ "$1 $2" = "-f %z" ] && [ $# -eq 3 ] && exec /usr/bin/stat -L -c %s -- "$3"\n'
            'echo "stat: illegal option -- ${1#-}" >&2; exit 1\n',
    "df": '[ "$1" = "-k" ] && [ $# -eq 2 ] || { echo "usage: df [-k] file" >&2; exit 64; }\n'
          'echo "Filesystem  1024-blocks    Used    Avail Capacity  Mounted on"\n'
          'echo "/dev/ada0p2    20307196 5046384 ${DF_AVAIL:-13636240}    27%    /"\n',
}


def image_facts(marker=True, providers=(), units=(), mounts=()):
    return {
        "image.ImageFiles": {f"path={IMAGE}": {"image": {"state": "geli"}, "marker": "ab" * 32 if marker else None,
                                               "record": False, "free_kb": 2**24}},
        "geli.GeliProviders": {name: {"consumer": name[:-4]} for name in providers},
        "md.MdDevices": {name: {"type": "vnode", "size": "8192M", "file": IMAGE} for name in units},
        "mount.MountPoints": {**MOUNTS, **{path: {"device": "/dev/md10.eli", "type": "ufs", "options": []}
                                           for path in mounts}},
    }


def last_sector(path: Path) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(-512, os.SEEK_END)
        return handle.read()


def half_made(tmp_path: Path, size: str = "1M") -> Path:
    """An image made in sh by image.created, its marker beside it."""
    path = tmp_path / "jails" / "tor.img"
    for command in plan_operation(image.created, str(path), size).commands:
        run = sh(command, tmp_path, FREEBSD_SHIMS)
        assert run.returncode == 0, run.stderr
    return path


def test_incomplete_image_discarded_with_everything_on_it():
    op = plan_operation(image.incomplete_discarded, IMAGE, 10, "/var/jails/tor",
                        facts=image_facts(providers=["md10.eli"], units=["md10"], mounts=["/var/jails/tor"]))
    guard = image.belongs_guard(IMAGE)
    assert op.commands == [f"{guard}umount -f /var/jails/tor", f"{guard}geli detach md10.eli",
                           f"{guard}mdconfig -d -u 10", f"{guard}rm -f {IMAGE} && rm -f {MARKER}"]


def test_image_without_marker_is_never_discarded():
    op = plan_operation(image.incomplete_discarded, IMAGE, 10, "/var/jails/tor",
                        facts=image_facts(marker=False, providers=["md10.eli"], units=["md10"]))
    assert (op.commands, op.noops) == ([], [f"{IMAGE} is not a half-made image"])


def test_image_created_in_sh_marker_first_naming_the_image_and_never_over_an_existing_file(tmp_path):
    path = tmp_path / "jails" / "tor.img"
    op = plan_operation(image.created, str(path), "1M")
    assert op.commands[0] == f"test -d {tmp_path}/jails || install -d -m 0700 {tmp_path}/jails"
    assert [sh(command, tmp_path, FREEBSD_SHIMS).returncode for command in op.commands] == [0, 0]
    marker = Path(str(path) + image.MARKER_SUFFIX)
    assert path.stat().st_size == 2**20 and path.parent.stat().st_mode & 0o777 == 0o700
    sector = last_sector(path)
    assert sector != bytes(512) and sector.isascii()
    assert marker.read_text() == hashlib.sha256(sector).hexdigest() + "\n"
    again = sh(op.commands[1], tmp_path, FREEBSD_SHIMS)
    assert again.returncode == 1 and "exists: not creating it again" in again.stderr
    assert last_sector(path) == sector


def test_two_images_never_share_a_seal(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = half_made(tmp_path / "a"), half_made(tmp_path / "b")
    assert last_sector(first) != last_sector(second)


def test_image_directory_that_exists_keeps_its_mode(tmp_path):
    """An image under /usr/home or / must not re-mode that directory to 0700 (logins would break)."""
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    op = plan_operation(image.created, str(home / "tor.img"), "1M")
    assert [sh(command, tmp_path, FREEBSD_SHIMS).returncode for command in op.commands] == [0, 0]
    assert home.stat().st_mode & 0o777 == 0o755


def test_image_not_created_beside_a_marker_without_its_image(tmp_path):
    path = tmp_path / "tor.img"
    Path(str(path) + image.MARKER_SUFFIX).write_text("stale\n")
    run = sh(plan_operation(image.created, str(path), "1M").commands[1], tmp_path, FREEBSD_SHIMS)
    assert run.returncode == 1 and "exists without its image: not making one" in run.stderr
    assert not path.exists()


@pytest.mark.parametrize("what", ["restored image", "older marker", "no image"])
def test_discard_in_sh_never_removes_a_file_its_marker_does_not_name(tmp_path, what):
    """The server re-checks at execution: a restored image dropped at the path since the plan survives."""
    path = half_made(tmp_path)
    marker = Path(str(path) + image.MARKER_SUFFIX)
    if what == "restored image":
        restored = bytearray(2**20)
        restored[-512:-503] = b"GEOM::ELI"
        path.write_bytes(bytes(restored))
    elif what == "older marker":
        marker.write_text("")
    else:
        path.unlink()
    op = plan_operation(image.incomplete_discarded, str(path), 10, "/var/jails/tor",
                        facts={"image.ImageFiles": {f"path={path}": {"marker": "x"}}, "mount.MountPoints": MOUNTS,
                               "geli.GeliProviders": {}, "md.MdDevices": {}})
    run = sh(op.commands[-1], tmp_path, FREEBSD_SHIMS)
    assert run.returncode == 1
    assert f"torjail: {path} is not the half-made image that {marker} names: not touching it" in run.stderr
    assert marker.exists() and path.exists() == (what != "no image")


def test_discard_in_sh_removes_the_image_its_marker_names(tmp_path):
    path = half_made(tmp_path)
    op = plan_operation(image.incomplete_discarded, str(path), 10, "/var/jails/tor",
                        facts={"image.ImageFiles": {f"path={path}": {"marker": "x"}}, "mount.MountPoints": MOUNTS,
                               "geli.GeliProviders": {}, "md.MdDevices": {}})
    assert sh(op.commands[-1], tmp_path, FREEBSD_SHIMS).returncode == 0
    assert not path.exists() and not Path(str(path) + image.MARKER_SUFFIX).exists()


def test_image_encrypted_only_while_the_marker_names_it():
    op = plan_operation(image.encrypted, IMAGE, 10, HiddenValue(SECRET), key_length=128, sector_size=512)
    guard = image.belongs_guard(IMAGE)
    assert op.commands == [
        f"{guard}mdconfig -a -t vnode -f {IMAGE} -u 10",
        f"{guard}geli init -e AES-XTS -l 128 -s 512 -B none -J - md10 && tail -c 512 {IMAGE} | sha256 > {MARKER} "
        f"{STDIN_MARK}",
        f"{guard}geli attach -j - md10 {STDIN_MARK}",
    ]
    with pytest.raises(OperationValueError, match="HiddenValue"):
        plan_operation(image.encrypted, IMAGE, 10, SECRET)


def test_image_encrypted_in_sh_the_marker_follows_the_new_metadata(tmp_path):
    """After geli init the last sector holds the GELI metadata: the marker names the image by it from then on,
    so an interrupted deploy can still discard its own half-made image, and only that one."""
    path = half_made(tmp_path)
    shims = {**FREEBSD_SHIMS, "mdconfig": RECORD,
             "geli": RECORD + f'[ "$1" = init ] && printf "GEOM::ELI fake metadata" | dd of={path} bs=512 '
                              f"seek=2047 conv=notrunc 2>/dev/null\nexit 0\n"}
    result = plan_calls(lambda: image.encrypted(str(path), 10, HiddenValue(SECRET)))
    (commands,) = result.pyinfra_commands()
    for command in commands:
        run = sh(command.get_raw_value(), tmp_path, shims, stdin=SECRET + "\n")
        assert run.returncode == 0, run.stderr
    assert logged(tmp_path) == [f"mdconfig -a -t vnode -f {path} -u 10",
                                "geli init -e AES-XTS -l 256 -s 4096 -B none -J - md10", "geli attach -j - md10"]
    assert last_sector(path).startswith(b"GEOM::ELI fake")
    marker = Path(str(path) + image.MARKER_SUFFIX)
    assert marker.read_text() == hashlib.sha256(last_sector(path)).hexdigest() + "\n"


def test_image_encrypted_in_sh_refuses_a_file_the_marker_does_not_name(tmp_path):
    path = half_made(tmp_path)
    path.write_bytes(bytes(2**20))
    result = plan_calls(lambda: image.encrypted(str(path), 10, HiddenValue(SECRET)))
    (commands,) = result.pyinfra_commands()
    shims = {**FREEBSD_SHIMS, "mdconfig": RECORD, "geli": RECORD}
    assert [sh(command.get_raw_value(), tmp_path, shims).returncode for command in commands] == [1, 1, 1]
    assert logged(tmp_path) == []


def test_image_encrypted_passphrase_on_stdin_only():
    result = plan_calls(lambda: image.encrypted(IMAGE, 10, HiddenValue(SECRET)))
    (commands,) = result.pyinfra_commands()
    assert [command.connector_arguments.get("_stdin") for command in commands] == [None, SECRET, SECRET]
    assert not any(SECRET in command.get_raw_value() for command in commands)


def test_filesystem_made_in_sh_records_the_image_and_drops_the_marker(tmp_path, monkeypatch):
    monkeypatch.setattr(image, "RECORDS", str(tmp_path / "db"))
    path = half_made(tmp_path)
    marker, record = Path(str(path) + image.MARKER_SUFFIX), Path(str(tmp_path / "db") + str(path))
    op = plan_operation(image.filesystem_made, str(path), "md10.eli")
    shims = {**FREEBSD_SHIMS, "newfs": RECORD}
    assert sh(op.commands[0], tmp_path, shims).returncode == 0
    assert logged(tmp_path) == ["newfs -U /dev/md10.eli"] and not marker.exists()
    assert record.read_text().startswith(f"torjail made an encrypted image at {path}.")
    assert sh(op.commands[0], tmp_path, shims).returncode == 1, "without its marker, no second newfs"
    assert logged(tmp_path) == ["newfs -U /dev/md10.eli"]


def test_image_files_probe_in_sh_reads_marker_record_and_free_space(tmp_path, monkeypatch):
    monkeypatch.setattr(image, "RECORDS", str(tmp_path / "db"))
    path = half_made(tmp_path)
    shims = {**FREEBSD_SHIMS, "mdconfig": f'printf "md10\\tvnode\\t    1M\\t{path}\\t\\n"\n'}
    fact = image.ImageFiles()
    run = sh(str(fact.command(str(path))), tmp_path, shims)
    found = fact.process(run.stdout.splitlines())
    assert (found["image"]["state"], found["image"]["md_unit"]) == ("unknown", "md10")
    assert found["marker"] == found["image"]["seal"] == hashlib.sha256(last_sector(path)).hexdigest()
    assert (found["record"], found["free_kb"]) == (False, 13636240)

    record = Path(image.record_path(str(path)))
    record.parent.mkdir(parents=True)
    record.write_text("made\n")
    fact = image.ImageFiles()
    assert fact.process(sh(str(fact.command(str(path))), tmp_path, shims).stdout.splitlines())["record"] is True

    # df only answers for the nearest directory that exists
    only_there = FREEBSD_SHIMS["df"].replace('[ "$1" = "-k" ]', f'[ "$2" = "{tmp_path}" ] && [ "$1" = "-k" ]')
    fact = image.ImageFiles()
    run = sh(str(fact.command(str(tmp_path / "not" / "yet" / "tor.img"))), tmp_path, {**shims, "df": only_there})
    found = fact.process(run.stdout.splitlines())
    assert (found["image"]["state"], found["marker"], found["record"], found["free_kb"]) == (
        "absent", None, False, 13636240)


def test_image_files_free_space_negative_or_unreadable():
    """UFS shows a negative Avail once root's reserve is in use; no df output is no free space known."""
    fact = image.ImageFiles()
    fact.command(IMAGE)
    df = ["Filesystem  1024-blocks    Used  Avail Capacity  Mounted on", "/dev/ada0p2  1000 1100 -100   110%    /"]
    assert fact.process(["absent", "== marker", "== record", "== df", *df])["free_kb"] == -100
    assert fact.process(["absent", "== marker", "== record", "== df"])["free_kb"] is None
    assert fact.process(["absent", "== marker", "present", "== record", "== df"])["marker"] == ""


def test_filesystem_made_only_with_the_marker_naming_the_image():
    op = plan_operation(image.filesystem_made, IMAGE, "md10.eli")
    assert op.commands == [
        f"{image.belongs_guard(IMAGE)}newfs -U /dev/md10.eli && mkdir -p /var/db/torjail/images/var/jails && "
        f"echo 'torjail made an encrypted image at {IMAGE}. While this file exists, a deploy that finds no image "
        f"there stops instead of making a new, empty one.' > /var/db/torjail/images{IMAGE} && rm -f {MARKER}"]


UNLOCK_SHIMS = {
    "mdconfig": RECORD,
    "geli": RECORD + 'read -r key; [ "$key" = "right one" ] && exit 0\necho "geli: Wrong key for md10." >&2; exit 1\n',
}


@pytest.mark.parametrize("passphrase, status", [("right one", 0), ("wrong one", 1)])
def test_unlocked_in_sh_detaches_its_md_unit_after_a_wrong_passphrase(tmp_path, passphrase, status):
    result = plan_calls(lambda: image.unlocked(IMAGE, 10, HiddenValue(passphrase)),
                        facts={"geli.GeliProviders": {}, "md.MdDevices": {}})
    ((command,),) = result.pyinfra_commands()
    run = sh(command.get_raw_value(), tmp_path, UNLOCK_SHIMS, stdin=command.connector_arguments["_stdin"] + "\n")
    assert run.returncode == status
    attach = [f"mdconfig -a -t vnode -f {IMAGE} -u 10", "geli attach -j - md10"]
    if status:
        assert logged(tmp_path) == attach + ["mdconfig -d -u 10"]
        assert "wrong passphrase?): nothing was changed" in run.stderr
    else:
        assert logged(tmp_path) == attach


def test_unlocked_noop_when_attached_and_keeps_a_unit_it_did_not_attach():
    op = plan_operation(image.unlocked, IMAGE, 10, HiddenValue(SECRET), facts=image_facts(providers=["md10.eli"]))
    assert (op.commands, op.noops) == ([], ["md10.eli is already attached"])
    op = plan_operation(image.unlocked, IMAGE, 10, HiddenValue(SECRET), facts=image_facts(units=["md10"]))
    assert "mdconfig" not in op.commands[0]


def test_unlocked_never_attaches_one_image_twice():
    facts = image_facts(units=["md7"])
    with pytest.raises(OperationError, match=f"{IMAGE} is already attached as md7: one image is never attached"):
        plan_operation(image.unlocked, IMAGE, 10, HiddenValue(SECRET), facts=facts)
    facts["md.MdDevices"] = {"md10": {"type": "vnode", "size": "8192M", "file": "/var/jails/other.img"}}
    with pytest.raises(OperationError, match=f"md10 is attached to /var/jails/other.img, not {IMAGE}"):
        plan_operation(image.unlocked, IMAGE, 10, HiddenValue(SECRET), facts=facts)


def test_checked_filesystem():
    op = plan_operation(image.checked_filesystem, "md10.eli", "/var/jails/tor", facts=image_facts())
    assert op.commands == ["fsck -t ufs -p /dev/md10.eli"]
    op = plan_operation(image.checked_filesystem, "md10.eli", "/var/jails/tor",
                        facts=image_facts(mounts=["/var/jails/tor"]))
    assert (op.commands, op.noops) == ([], ["/var/jails/tor is mounted: no fsck"])


# --- mount ----------------------------------------------------------------------------------------------------


def test_mount_points_from_mount_p():
    output = ["/dev/ada0p2\t\t/\t\tufs\trw\t1 1", "devfs\t\t\t/dev\t\tdevfs\trw\t0 0",
              "/dev/md10.eli\t\t/var/jails/tor\t\tufs\trw,nosuid\t2 2", ""]
    assert mount.MountPoints().process(output) == {
        "/": {"device": "/dev/ada0p2", "type": "ufs", "options": ["rw"]},
        "/dev": {"device": "devfs", "type": "devfs", "options": ["rw"]},
        "/var/jails/tor": {"device": "/dev/md10.eli", "type": "ufs", "options": ["rw", "nosuid"]},
    }


def test_mounted():
    facts = {"mount.MountPoints": MOUNTS}
    assert plan_operation(mount.mount, "/var/jails/tor", device="/dev/md10.eli", facts=facts).commands == [
        "mount -t ufs /dev/md10.eli /var/jails/tor"]
    assert plan_operation(mount.mount, "/var/jails/tor", device="/dev/md10.eli", options=("nosuid", "noatime"),
                          facts=facts).commands == ["mount -t ufs -o nosuid,noatime /dev/md10.eli /var/jails/tor"]
    facts = image_facts(mounts=["/var/jails/tor"])
    op = plan_operation(mount.mount, "/var/jails/tor", device="/dev/md10.eli", facts=facts)
    assert (op.commands, op.noops) == ([], ["/dev/md10.eli is already mounted on /var/jails/tor"])
    with pytest.raises(OperationError, match="refusing to mount over it"):
        plan_operation(mount.mount, "/var/jails/tor", device="/dev/md3", facts=facts)


def test_unmounted():
    facts = image_facts(mounts=["/var/jails/tor"])
    op = plan_operation(mount.mount, "/var/jails/tor", mounted=False, facts=facts)
    assert op.commands == ["umount /var/jails/tor"]
    op = plan_operation(mount.mount, "/var/jails/tor", mounted=False, facts={"mount.MountPoints": MOUNTS})
    assert (op.commands, op.noops) == ([], ["nothing is mounted on /var/jails/tor"])


def test_unmounted_assumed_mounted_by_an_earlier_operation_asks_nothing():
    """The fixture has no MountPoints at all: the operation must not read them."""
    op = plan_operation(mount.mount, "/var/jails/tor", mounted=False, assume_mounted=True, facts={})
    assert op.commands == ["umount /var/jails/tor"]


# --- net ------------------------------------------------------------------------------------------------------


ROUTE_GET = """   route to: default
destination: default
       mask: default
    gateway: 203.0.113.1
        fib: 0
  interface: vtnet0
      flags: <UP,GATEWAY,DONE,STATIC>
 recvpipe  sendpipe  ssthresh  rtt,msec    mtu        weight    expire
       0         0         0         0      1500         1         0""".splitlines()

IFCONFIG = """vtnet0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\toptions=4c079b<RXCSUM,TXCSUM,VLAN_MTU>
\tether 58:9c:fc:00:00:01
\tinet 203.0.113.10 netmask 0xffffff00 broadcast 203.0.113.255
\tinet6 fe80::5a9c:fcff:fe00:1%vtnet0 prefixlen 64 scopeid 0x1
lo0: flags=1008049<UP,LOOPBACK,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 16384
\tinet 127.0.0.1 netmask 0xff000000
lo1: flags=8008<LOOPBACK,MULTICAST> metric 0 mtu 16384
\tgroups: lo""".splitlines()


def test_default_route_interface():
    assert net.DefaultRouteInterface().process(ROUTE_GET) == "vtnet0"
    assert net.DefaultRouteInterface().process([]) is None


def test_interfaces_from_ifconfig():
    assert net.Interfaces().process(IFCONFIG) == {
        "vtnet0": {"up": True, "inet": ["203.0.113.10"], "inet6": ["fe80::5a9c:fcff:fe00:1"]},
        "lo0": {"up": True, "inet": ["127.0.0.1"], "inet6": []},
        "lo1": {"up": False, "inet": [], "inet6": []},
    }


@pytest.mark.parametrize("interfaces, commands", [
    ({}, ["{ ifconfig lo1 create ; } && { ifconfig lo1 inet 10.0.0.1/32 alias ; }"]),
    ({"lo1": {"up": False, "inet": [], "inet6": []}}, ["ifconfig lo1 inet 10.0.0.1/32 alias"]),
    ({"lo1": {"up": True, "inet": ["10.0.0.1"], "inet6": []}}, []),
])
def test_cloned_address(interfaces, commands):
    op = plan_operation(net.cloned_addresses, "lo1", ["10.0.0.1"], facts={"net.Interfaces": interfaces})
    assert op.commands == commands


@pytest.mark.parametrize("interfaces, commands", [
    ({}, ["{ ifconfig lo1 create ; } && { ifconfig lo1 inet 10.0.0.1/32 alias ; } && "
          "{ ifconfig lo1 inet 10.0.0.2/32 alias ; }"]),
    ({"lo1": {"up": True, "inet": ["10.0.0.1"], "inet6": []}}, ["ifconfig lo1 inet 10.0.0.2/32 alias"]),
    ({"lo1": {"up": True, "inet": ["10.0.0.2", "10.0.0.1"], "inet6": []}}, []),
])
def test_cloned_addresses_of_several_jails(interfaces, commands):
    """The interface is created once, and only the addresses it lacks are added."""
    op = plan_operation(net.cloned_addresses, "lo1", ["10.0.0.1", "10.0.0.2"], facts={"net.Interfaces": interfaces})
    assert op.commands == commands


# --- pfguard --------------------------------------------------------------------------------------------------


def test_guard_fact():
    assert pfguard.PfGuard().process(["4242"]) == 4242
    assert pfguard.PfGuard().process([]) is None


def test_guarded_load_commands():
    """The guard is marked waiting before it starts; its rollback knows whether pf was enabled (the rollback
    programs themselves run in sh in test_pf_rollback.py)."""
    facts = {"pfguard.PfGuard": None, "pf.PfStatus": {"loaded": True, "enabled": True}}
    op = plan_operation(pfguard.guarded_load, "/etc/pf.conf", seconds=60, facts=facts)
    assert op.commands == [pfguard.start_command("/etc/pf.conf", 60, True), "pfctl -f /etc/pf.conf"]
    assert op.commands[0].startswith(f"touch {pfguard.GUARD_WAITING_FILE} && daemon -f sh -c ")
    assert "sleep 60;" in op.commands[0]
    facts = {"pfguard.PfGuard": None, "pf.PfStatus": {"loaded": False, "enabled": False}}
    op = plan_operation(pfguard.guarded_load, "/etc/pf.conf", facts=facts)
    assert op.commands[0] == pfguard.start_command("/etc/pf.conf", 90, False)
    assert op.commands[1:] == ["pfctl -f /etc/pf.conf", "daemon -f sh -c 'sleep 2; pfctl -e'"]


def test_superseded_stops_only_a_guard_that_waits():
    op = plan_operation(pfguard.superseded, facts={"pfguard.PfGuard": 99})
    assert op.commands == [pfguard._supersede_command()]
    op = plan_operation(pfguard.superseded, facts={"pfguard.PfGuard": None})
    assert op.commands == [] and op.noops == ["no rollback guard is waiting"]


class FakeConnector:
    """Stands in for pyinfra's SSH connector: each instance is one connection to a server whose pf says `status`."""

    status = "Status: Enabled for 0 days 00:00:03           Debug: Urgent"
    guard = [pfguard.GUARD_WAITING]
    made: list = []

    def __init__(self, state, host):
        self.closed = False
        FakeConnector.made.append(self)

    def connect(self):
        pass

    def run_shell_command(self, command, **arguments):
        self.ran = (str(command), arguments)
        self.commands = getattr(self, "commands", []) + [self.ran]
        return True, SimpleNamespace(stdout_lines=[self.status, "", *self.guard])

    def disconnect(self):
        self.closed = True


def fresh_login_host(monkeypatch):
    FakeConnector.made = []
    monkeypatch.setattr(pfguard.time, "sleep", lambda seconds: None)
    old = FakeConnector(None, None)
    host = SimpleNamespace(name="relay1", connector_cls=FakeConnector, connector=old,
                           current_op_global_arguments={"_sudo": True, "_ignore_errors": False})
    return host, old


def test_fresh_ssh_login_through_pyinfra_continues_the_deploy_over_it(monkeypatch):
    """pyinfra itself calls the function (as python.call does): it gets state and host, sees pf enabled through a
    new connection, and the host keeps that connection; the old one, which pf may have cut, is closed."""
    host, old = fresh_login_host(monkeypatch)
    FunctionCommand(pfguard.fresh_ssh_login, (), {}).execute(SimpleNamespace(), host, {})
    new = FakeConnector.made[-1]
    assert host.connector is new and new is not old and old.closed and not new.closed
    arguments = {"_sudo": True, "_timeout": 30}
    # the deploy lock follows the deploy onto the new session before the old one closes
    assert new.commands == [(str(pfguard.login_check_command()), arguments),
                            (deploylock.handover_command(), arguments)]


def test_fresh_ssh_login_fails_while_pf_is_off(monkeypatch):
    host, old = fresh_login_host(monkeypatch)
    monkeypatch.setattr(FakeConnector, "status", "Status: Disabled for 0 days 00:00:00")
    with pytest.raises(PyinfraError, match="relay1: no fresh SSH login with pf enabled .*pf is not enabled"):
        pfguard.fresh_ssh_login(None, host, attempts=2)
    assert host.connector is old and len(FakeConnector.made) == 3 and all(c.closed for c in FakeConnector.made[1:])


def test_fresh_ssh_login_after_the_guard_stopped_waiting_fails_at_once(monkeypatch):
    """A login that works only once the guard has put the previous ruleset back proves nothing about the new one."""
    host, old = fresh_login_host(monkeypatch)
    monkeypatch.setattr(FakeConnector, "guard", [])
    with pytest.raises(PyinfraError, match="relay1: no fresh SSH login .*after the rollback guard had stopped"):
        pfguard.fresh_ssh_login(None, host, attempts=5)
    assert host.connector is old and len(FakeConnector.made) == 2 and FakeConnector.made[1].closed


# --- pkg ------------------------------------------------------------------------------------------------------


def test_pkg_facts():
    assert pkg.PkgBootstrapped().process(["yes"]) is True
    assert pkg.PkgBootstrapped().process(["no"]) is False
    assert pkg.JailPackages().process(["pkg 2.1.2", "tor 0.4.8.17", ""]) == {"pkg": "2.1.2", "tor": "0.4.8.17"}
    assert str(pkg.JailPackages().command("tor", "/var/jails/tor", True)) == (
        "test -d /var/jails/tor/var/db/pkg && pkg -j tor query -a '%n %v' 2>/dev/null || true")
    assert str(pkg.JailPackages().command("tor", "/var/jails/tor", False)) == (
        "test -d /var/jails/tor/var/db/pkg && pkg -r /var/jails/tor query -a '%n %v' 2>/dev/null || true")


@pytest.mark.parametrize("running, target", [(True, "-j tor"), (False, "-r /var/jails/tor")])
def test_pkg_operations(running, target):
    """Packages for the jail never go in with `pkg -c` (scripts chrooted as host root)."""
    op = plan_operation(pkg.bootstrapped, facts={"pkg.PkgBootstrapped": False})
    assert op.commands == ["env ASSUME_ALWAYS_YES=yes pkg bootstrap -y"]
    assert plan_operation(pkg.bootstrapped, facts={"pkg.PkgBootstrapped": True}).commands == []
    key = f"jail_name=tor, root=/var/jails/tor, running={running}"
    op = plan_operation(pkg.installed_in_jail, "tor", "/var/jails/tor", running, "tor",
                        facts={"pkg.JailPackages": {key: {}}})
    assert op.commands == [f"env ASSUME_ALWAYS_YES=yes pkg {target} install -y tor"]
    op = plan_operation(pkg.installed_in_jail, "tor", "/var/jails/tor", running, "tor",
                        facts={"pkg.JailPackages": {key: {"tor": "0.4.8.17"}}})
    assert (op.commands, op.noops) == ([], ["tor is already installed in jail tor"])


# --- release --------------------------------------------------------------------------------------------------


SHA256 = '[ "$1" = -q ] && shift\nsha256sum "$1" | cut -d" " -f1\n'


PINNED = hashlib.sha256(b"the archive").hexdigest()


@pytest.mark.parametrize("archive", [b"the archive", b"another archive"])
def test_release_checked_against_the_pin_in_sh_before_it_is_kept(tmp_path, archive):
    """The mirror's MANIFEST is never fetched: a forged mirror would forge it too. Only the pinned sum counts."""
    cache = tmp_path / "cache"
    key = f"cache={cache}, sha256={PINNED}"
    op = plan_operation(release.fetched, "https://mirror.example/releases/amd64/14.3-RELEASE", str(cache), PINNED,
                        facts={"release.VerifiedArchive": {key: False}})
    (command,) = op.commands  # the directory, the download and the check: one remote command
    assert f"{{ fetch -q -o {cache}/base.txz.part https://mirror.example/releases/amd64/14.3-RELEASE/base.txz ; }}" \
        in command
    assert "MANIFEST" not in command
    # the mirror serves `archive`, and a MANIFEST that vouches for it
    (tmp_path / "served").write_bytes(archive)
    fetch = ('[ "$1" = -q ] && shift; [ "$1" = -o ] && cp served "$2" && '
             'printf "base.txz\\t%s\\n" "$(sha256sum served | cut -d" " -f1)" > "$(dirname "$2")/MANIFEST"\n')
    verify = sh(command, tmp_path, {"sha256": SHA256, "fetch": fetch})
    matches = archive == b"the archive"
    assert verify.returncode == (0 if matches else 1), verify.stderr
    assert (cache / "base.txz").exists() == matches and not (cache / "base.txz.part").exists()
    if not matches:
        assert "does not match the pinned sha256 (setting 'jail_release_sha256')" in verify.stderr
        (cache / "base.txz").write_bytes(archive)  # an archive already in the cache is checked against the pin too
    fact = sh(str(release.VerifiedArchive().command(str(cache), PINNED)), tmp_path, {"sha256": SHA256})
    assert release.VerifiedArchive().process(fact.stdout.split()) == matches


def test_release_fetch_noop_when_verified():
    op = plan_operation(release.fetched, "https://m/r", "/c", PINNED,
                        facts={"release.VerifiedArchive": {f"cache=/c, sha256={PINNED}": True}})
    assert (op.commands, op.noops) == ([], ["/c/base.txz is already downloaded and verified"])


LOCKF = 'while getopts knst: option; do :; done; shift $((OPTIND - 1)); echo "lockf $1" >> "$LOG"; shift; exec "$@"\n'


def test_release_unpacked_once_in_sh(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    op = plan_operation(release.unpacked, "/c", str(root), "14.3-RELEASE",
                        facts={"release.RootPopulated": {f"root={root}": None}})
    shims = {"tar": RECORD, "lockf": LOCKF}
    assert sh(op.commands[0], tmp_path, shims).returncode == 0
    assert logged(tmp_path) == [f"lockf {release.UNPACK_LOCK}", f"tar -x -f /c/base.txz -C {root} --unlink"]
    fact = sh(str(release.RootPopulated().command(str(root))), tmp_path)
    assert release.RootPopulated().process(fact.stdout.splitlines()) == "14.3-RELEASE"
    op = plan_operation(release.unpacked, "/c", str(root), "14.3-RELEASE",
                        facts={"release.RootPopulated": {f"root={root}": "14.3-RELEASE"}})
    assert op.commands == []


def test_release_unpack_after_another_completed_it_unpacks_nothing(tmp_path):
    """A deploy cut off mid-unpack leaves its tar running; the re-run, planned before that tar wrote the marker,
    waits for it (lockf) and then finds the root completed with the same release: success, nothing unpacked over."""
    root = tmp_path / "root"
    root.mkdir()
    op = plan_operation(release.unpacked, "/c", str(root), "14.3-RELEASE",
                        facts={"release.RootPopulated": {f"root={root}": None}})
    shims = {"tar": RECORD, "lockf": LOCKF}
    (root / release.MARKER).write_text("14.3-RELEASE\n")
    assert sh(op.commands[0], tmp_path, shims).returncode == 0
    assert not any(line.startswith("tar") for line in logged(tmp_path))


@pytest.mark.parametrize("marker", ["14.2-RELEASE", "link"])
def test_release_unpack_never_goes_over_another_marker(tmp_path, marker):
    root = tmp_path / "root"
    root.mkdir()
    op = plan_operation(release.unpacked, "/c", str(root), "14.3-RELEASE",
                        facts={"release.RootPopulated": {f"root={root}": None}})
    if marker == "link":
        (tmp_path / "elsewhere").write_text("14.3-RELEASE\n")
        (root / release.MARKER).symlink_to(tmp_path / "elsewhere")
    else:
        (root / release.MARKER).write_text(marker + "\n")
    assert sh(op.commands[0], tmp_path, {"tar": RECORD, "lockf": LOCKF}).returncode == 1
    assert not any(line.startswith("tar") for line in logged(tmp_path))


# --- service --------------------------------------------------------------------------------------------------


def test_service_running_and_reloaded():
    assert str(service.ServiceRunning().command("tor", jail="tor")) == (
        "service -j tor tor onestatus >/dev/null 2>&1 && echo running || echo stopped")
    assert service.ServiceRunning().process(["running"]) is True
    assert service.ServiceRunning().process(["stopped"]) is False
    facts = {"service.ServiceRunning": {"jail=None, service=pflog": False}}
    assert plan_operation(service.service, "pflog", facts=facts).commands == ["service pflog start"]
    facts = {"service.ServiceRunning": {"jail=tor, service=tor": True}}
    op = plan_operation(service.service, "tor", jail="tor", facts=facts)
    assert (op.commands, op.noops) == ([], ["tor is already running in jail tor"])
    assert plan_operation(service.service, "tor", running=False, jail="tor", facts=facts).commands == [
        "service -j tor tor onestop"]
    assert plan_operation(service.reloaded, "tor", jail="tor").commands == ["service -j tor tor reload"]


# --- system ---------------------------------------------------------------------------------------------------


def test_system_facts():
    assert system.FreeBSDVersion().process(["14.3-RELEASE-p2"]) == (14, 3, "14.3-RELEASE-p2")
    assert system.FreeBSDVersion().process([]) is None
    assert system.FreeBSDVersion().process(["Linux"]) is None
    assert system.DumpDevice().process(["/dev/ada0p3"]) == "/dev/ada0p3"
    assert system.DumpDevice().process(["/dev/null"]) is None


def test_dumps_off():
    assert plan_operation(system.dumps_off, facts={"system.DumpDevice": "/dev/ada0p3"}).commands == ["dumpon off"]
    op = plan_operation(system.dumps_off, facts={"system.DumpDevice": None})
    assert (op.commands, op.noops) == ([], ["crash dumps are already off"])
