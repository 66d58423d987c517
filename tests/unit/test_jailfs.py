"""The host's shell under a stopped jail's root refuses a path the jail redirected with a symbolic link, and writes
a path it did not: the guard runs for real (sh), on a root in a temporary directory."""

import subprocess

import pytest
from pyinfra.api import StringCommand

from harness import plan_operation

from torjail.freebsd import jailfs, staging


def _run(root, path, content, tmp_path):
    source = tmp_path / "source"
    source.write_text(content)
    script = (f'set -e; mkdir -p "$R"/etc; rm -f "$R"{path}.new; cat > "$R"{path}.new; '
              f'mv -f "$R"{path}.new "$R"{path}')
    command = StringCommand(*jailfs.shell("tor", str(root), False, script, [path, path + ".new"]))
    with open(source) as stdin:
        return subprocess.run(["/bin/sh", "-c", command.get_raw_value()], stdin=stdin, capture_output=True,
                              text=True, timeout=10)


@pytest.mark.parametrize("planted", ["etc", "etc/rc.conf.new"])
def test_a_planted_link_is_refused_and_the_host_file_untouched(tmp_path, planted):
    root, outside = tmp_path / "root", tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    outside.mkdir()
    (outside / "rc.conf").write_text("host\n")
    (outside / "rc.conf.new").write_text("host\n")
    link = root / planted
    if link.is_dir():
        link.rmdir()
    link.symlink_to(outside / ("rc.conf.new" if planted.endswith(".new") else ""))
    result = _run(root, "/etc/rc.conf", "jail\n", tmp_path)
    assert result.returncode == 1
    assert f"{link} is a symbolic link in the jail root" in result.stderr
    assert (outside / "rc.conf").read_text() == "host\n" and (outside / "rc.conf.new").read_text() == "host\n"


def test_an_unredirected_path_is_written(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    result = _run(root, "/etc/rc.conf", "jail\n", tmp_path)
    assert result.returncode == 0, result.stderr
    assert (root / "etc" / "rc.conf").read_text() == "jail\n"


def test_a_running_jail_is_written_from_inside_it_without_a_guard():
    command = StringCommand(*jailfs.shell("tor", "/var/jails/tor", True, "true", ["/etc/rc.conf"]))
    assert command.get_raw_value() == "jexec tor /bin/sh -c 'R=; true'"


def test_file_attributes_reads_freebsd_stat_as_numbers():
    """FreeBSD's `stat -f '%Lp %u %g'`: mode as octal digits, owner and group as numbers; nothing: no regular file."""
    fact = jailfs.FileAttributes()
    assert fact.process(["600 256 256"]) == {"mode": "600", "user": "256", "group": "256"}
    assert fact.process([]) is None
    assert "[ ! -L '/var/jails/tor/my torrc' ]" in fact.command("/var/jails/tor/my torrc")


@pytest.mark.parametrize("found, wanted, fixes", [
    ({"mode": "644", "user": "0", "group": "0"}, ("644", "0", "0"), None),
    ({"mode": "644", "user": "0", "group": "0"}, ("0644", "0", "0"), None),  # the same mode, spelled otherwise
    ({"mode": "640", "user": "0", "group": "0"}, ("644", "0", "0"), ["chmod 644"]),
    ({"mode": "644", "user": "256", "group": "0"}, ("644", "0", "0"), ["chown 0:0"]),
    ({"mode": "644", "user": "256", "group": "256"}, ("644", None, None), None),  # no owner asked: not compared
    ({"mode": "666", "user": "0", "group": "256"}, ("644", None, "0"), ["chown :0", "chmod 644"]),
    (None, ("644", "0", "0"), None),  # no regular file: placed as a whole, not fixed
])
def test_attribute_fixes_compare_mode_and_numeric_owner(found, wanted, fixes):
    assert jailfs.attribute_fixes(found, *wanted) == fixes


def test_a_fix_of_a_stopped_jails_file_refuses_a_planted_link(tmp_path):
    """chmod follows links: the fix runs in the same guarded shell as a write, so a link the jail planted where
    the file was never carries the chmod onto the host."""
    root, outside = tmp_path / "root", tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    outside.mkdir()
    (outside / "rc.conf").write_text("x\n")
    (outside / "rc.conf").chmod(0o600)
    (root / "etc" / "rc.conf").symlink_to(outside / "rc.conf")
    dest = f"{root}/etc/rc.conf"
    op = plan_operation(jailfs.put, "tor", str(root), False, "/etc/rc.conf", content="x\n",
                        facts={"files.Sha1File": {f"path={dest}": jailfs.content_sha1("x\n")},
                               "jailfs.FileAttributes": {f"path={dest}": {"mode": "600", "user": "0", "group": "0"}}})
    (command,) = op.commands
    assert command.endswith("set -e; chmod 644 \"$R\"/etc/rc.conf'")
    ran = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=10)
    assert ran.returncode == 1 and "is a symbolic link in the jail root" in ran.stderr
    assert (outside / "rc.conf").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("planted", [False, True])
@pytest.mark.parametrize("content", ["jail 'quoted' $HOME \\n\n", "x" * staging.INLINE_LIMIT + "\n"],
                         ids=["sent inline", "uploaded"])
def test_content_is_sent_inline_or_uploaded_and_the_upload_removed_whether_placed_or_refused(tmp_path, planted,
                                                                                           content):
    """Small content goes inside the one command that writes it (nothing in the host's /tmp); larger content is
    uploaded, and the same command removes pyinfra's uploaded copy whether the file was placed or refused (a
    planted link): a refusal neither leaves that copy behind nor reads as success."""
    root, outside = tmp_path / "root", tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    outside.mkdir()
    if planted:
        (root / "etc" / "rc.conf").symlink_to(outside / "rc.conf")
    dest = f"{root}/etc/rc.conf"
    op = plan_operation(jailfs.put, "tor", str(root), False, "/etc/rc.conf", content=content,
                        facts={"files.Sha1File": {f"path={dest}": None}})
    uploaded = tmp_path / "uploaded"
    if len(content) < staging.INLINE_LIMIT:
        (command,) = op.commands
        assert command.startswith("printf %s ")
    else:
        upload, command = op.commands
        uploaded.write_text(content)
        command = command.replace(upload.removeprefix("upload "), str(uploaded))
    ran = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=10)
    assert not uploaded.exists()
    if planted:
        assert ran.returncode == 1 and "is a symbolic link in the jail root" in ran.stderr
        assert not (outside / "rc.conf").exists()
    else:
        assert ran.returncode == 0, ran.stderr
        assert (root / "etc" / "rc.conf").read_text() == content
