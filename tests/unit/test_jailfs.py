"""The host's shell under a stopped jail's root refuses a path the jail redirected with a symbolic link, and writes
a path it did not: the guard runs for real (sh), on a root in a temporary directory."""

import subprocess

import pytest
from pyinfra.api import StringCommand

from torjail.freebsd import jailfs


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
