"""What freebsd-update and pkg upgrade print, read by torjail.freebsd.update, and the symlink check that runs before
a jail's userland is patched from the host (run here with sh, find, readlink and realpath on a scratch root)."""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest

from torjail.freebsd.jailfs import links_out_refused as escape_check
from torjail.freebsd.update import BaseUpdates, PackageUpgrades

FETCH_WITH_UPDATES = textwrap.dedent("""\
    src component not installed, skipped
    Looking up update.FreeBSD.org mirrors... 3 mirrors found.
    Fetching metadata signature for 14.3-RELEASE from update2.freebsd.org... done.
    Fetching metadata index... done.
    Inspecting system... done.
    Preparing to download files... done.
    Fetching 3 patches. done.
    Applying patches... done.

    The following files will be removed as part of updating to
    14.3-RELEASE-p2:
    /usr/share/old.txt

    The following files will be added as part of updating to
    14.3-RELEASE-p2:
    /usr/share/new.txt

    The following files will be updated as part of updating to
    14.3-RELEASE-p2:
    /bin/freebsd-version
    /boot/kernel/kernel
    /lib/libc.so.7
    freebsd-update exit 0
    """).splitlines()

FETCH_UP_TO_DATE = textwrap.dedent("""\
    Looking up update.FreeBSD.org mirrors... 3 mirrors found.
    Fetching metadata signature for 14.3-RELEASE from update1.freebsd.org... done.
    Fetching metadata index... done.
    Inspecting system... done.
    Preparing to download files... done.

    No updates needed to update system to 14.3-RELEASE-p2.
    freebsd-update exit 0
    """).splitlines()

FETCH_PAST_END_OF_LIFE = textwrap.dedent("""\
    Looking up update.FreeBSD.org mirrors... 3 mirrors found.
    Fetching metadata signature for 14.3-RELEASE from update1.freebsd.org... done.
    Fetching metadata index... done.
    Inspecting system... done.
    Preparing to download files... done.

    No updates needed to update system to 14.3-RELEASE-p9.

    WARNING: FreeBSD 14.3-RELEASE-p9 HAS PASSED ITS END-OF-LIFE DATE.
    Any security issues discovered after Tue Jun 30 00:00:00 UTC 2026
    will not have been corrected.
    freebsd-update exit 1
    """).splitlines()

PKG_UPGRADES = textwrap.dedent("""\
    Updating FreeBSD repository catalogue...
    FreeBSD repository is up to date.
    All repositories are up to date.
    Checking for upgrades (2 candidates): .. done
    Processing candidates (2 candidates): .. done
    The following 3 package(s) will be affected (of 0 checked):

    New packages to be INSTALLED:
    \tzstd: 1.5.6

    Installed packages to be UPGRADED:
    \tlibevent: 2.1.12 -> 2.1.13
    \ttor: 0.4.8.16 -> 0.4.8.17

    Number of packages to be installed: 1
    Number of packages to be upgraded: 2

    3 MiB to be downloaded.
    """).splitlines()

PKG_UP_TO_DATE = textwrap.dedent("""\
    Updating FreeBSD repository catalogue...
    FreeBSD repository is up to date.
    All repositories are up to date.
    Checking for upgrades (0 candidates): 100%
    Processing candidates (0 candidates): 100%
    Checking integrity... done (0 conflicting)
    Your packages are up to date.
    """).splitlines()


def test_fetch_lists_what_would_be_updated_added_and_removed():
    assert BaseUpdates().process(FETCH_WITH_UPDATES) == {
        "version": "14.3-RELEASE-p2",
        "updated": ["/bin/freebsd-version", "/boot/kernel/kernel", "/lib/libc.so.7"],
        "added": ["/usr/share/new.txt"],
        "removed": ["/usr/share/old.txt"],
        "error": None,
    }


def test_fetch_with_nothing_to_do_gives_the_version_and_no_files():
    assert BaseUpdates().process(FETCH_UP_TO_DATE) == {"version": "14.3-RELEASE-p2", "updated": [], "added": [],
                                                       "removed": [], "error": None}


def test_a_failed_fetch_is_an_error_with_what_it_said():
    error = BaseUpdates().process(FETCH_PAST_END_OF_LIFE)["error"]
    assert "HAS PASSED ITS END-OF-LIFE DATE" in error and "will not have been corrected" in error


def test_fetch_runs_without_a_terminal_and_without_a_pager():
    status = '2>&1; echo "freebsd-update exit $?"'
    assert BaseUpdates().command().get_raw_value() == \
        f"env PAGER=cat freebsd-update --not-running-from-cron fetch {status}"
    assert BaseUpdates().command("/var/jails/tor", "14.3-RELEASE").get_raw_value() == (
        "env PAGER=cat freebsd-update --not-running-from-cron -b /var/jails/tor --currently-running 14.3-RELEASE "
        f"fetch {status}")


def test_pkg_dry_run_lists_upgrades_and_new_dependencies():
    assert PackageUpgrades().process(PKG_UPGRADES) == {
        "zstd": (None, "1.5.6"), "libevent": ("2.1.12", "2.1.13"), "tor": ("0.4.8.16", "0.4.8.17")}


def test_pkg_dry_run_with_several_repositories_names_them():
    lines = ["New packages to be INSTALLED:", "\tzstd: 1.5.6 [FreeBSD]", "", "Installed packages to be UPGRADED:",
             "\ttor: 0.4.8.16 -> 0.4.8.17 [FreeBSD]", ""]
    assert PackageUpgrades().process(lines) == {"zstd": (None, "1.5.6"), "tor": ("0.4.8.16", "0.4.8.17")}


def test_pkg_dry_run_with_nothing_to_do_is_empty():
    assert PackageUpgrades().process(PKG_UP_TO_DATE) == {}


def test_pkg_dry_run_exit_1_is_an_answer_and_worse_is_an_error():
    command = PackageUpgrades().command("tor").get_raw_value()
    for status, wanted in ((0, 0), (1, 0), (3, 1)):
        script = command.replace("pkg -j tor upgrade -n", f"sh -c 'exit {status}'")
        assert subprocess.run(["sh", "-c", script]).returncode == wanted, script


@pytest.fixture
def root(tmp_path):
    """A scratch jail root with the kinds of symlinks a release ships: relative, inside, to files and dirs."""
    jail = tmp_path / "jails" / "tor"
    (jail / "usr" / "src" / "sys").mkdir(parents=True)
    (jail / "usr" / "share" / "misc").mkdir(parents=True)
    (jail / "etc").mkdir()
    os.symlink("usr/src/sys", jail / "sys")
    os.symlink("/usr/share/misc/termcap", jail / "etc" / "termcap")  # absolute, to a file: replaced, not followed
    os.symlink("mail/aliases", jail / "etc" / "aliases")  # dangling, relative
    (tmp_path / "host-etc").mkdir()
    return jail


def check(root):
    return subprocess.run(["sh", "-c", escape_check(str(root))], capture_output=True, text=True)


def test_a_release_like_root_passes(root):
    assert check(root).returncode == 0


def test_a_directory_link_out_of_the_root_is_refused(root):
    os.symlink(str(root.parent.parent / "host-etc"), root / "usr" / "share" / "locale")
    result = check(root)
    assert result.returncode == 1 and "usr/share/locale leads out of the jail root" in result.stderr


def test_an_upward_relative_directory_link_is_refused(root):
    os.symlink("../../../host-etc", root / "usr" / "lib")
    assert check(root).returncode == 1


def test_dangling_links_are_left_alone(root):
    """No write of freebsd-update follows a dangling link (mkdir and rename do not): release links to files that
    are absent on the host pass, planted ones too."""
    os.symlink("/nonexistent/torjail-test", root / "usr" / "libexec")
    os.symlink(str(root.parent.parent / "host-etc" / "new"), root / "usr" / "include")
    assert check(root).returncode == 0
