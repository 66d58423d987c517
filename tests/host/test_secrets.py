"""Secrets that must never rest on the server's unencrypted disk: a GELI metadata backup, a keyfile or passphrase
file, the passphrase itself anywhere in any file, and the relay's ed25519 master key when it is kept offline.

"The unencrypted disk" is every file reachable from / except the encrypted jail root, the image (ciphertext)
and filesystems that are not on a disk (devfs, tmpfs, nullfs, ...). After a seizure, each of these secrets
would open the vault or let someone impersonate the relay.
"""

import os
import shlex
import subprocess

import pytest

from host_checks import require_jail_root_mounted, run_with_input, search_roots, unencrypted_exclusions
from torjail.freebsd.mount import MountPoints

SEARCH_TIMEOUT = 1800
# Source trees ship test keys named *.key; they hold nothing of this server.
SOURCE_TREES = ("/usr/src", "/usr/ports", "/usr/obj")
KEY_FILE_PATTERNS = ("*.key", "*.keyfile", "*.passphrase")
MASTER_KEY_FILES = ("ed25519_master_id_secret_key", "ed25519_master_id_secret_key_encrypted")


@pytest.fixture(scope="module")
def search_paths(host, settings):
    """Top-level paths that together cover the unencrypted disk (see host_checks.search_roots)."""
    mounts = MountPoints().process(host.check_output("mount -p").splitlines())

    def list_dir(path):
        return host.check_output("find %s -mindepth 1 -maxdepth 1 ! -type l", path).splitlines()

    return search_roots(unencrypted_exclusions(mounts, settings), list_dir)


def find_files(host, paths, patterns):
    """Regular files under `paths` (source trees left out) whose names match one of the shell `patterns`."""
    prune = " -o ".join(f"-path {shlex.quote(tree)}" for tree in SOURCE_TREES)
    names = " -o ".join(f"-name {shlex.quote(pattern)}" for pattern in patterns)
    quoted = " ".join(shlex.quote(path) for path in paths)
    result = host.run(f"find {quoted} \\( {prune} \\) -prune -o -type f \\( {names} \\) -print")
    assert result.rc == 0, f"find could not search everything: {result.stderr}"
    return result.stdout.splitlines()


def passphrase_search(host, settings, paths):
    """(exit status, files holding the passphrase, grep's errors), or None when this run does not know it.

    The passphrase reaches grep on standard input (`-f /dev/stdin`), never on a command line, and no variable
    holding it outlives this function (so no traceback can show it).
    """
    if not os.environ.get(settings.geli_passphrase_env):
        return None
    command = "grep -r -l -F -D skip -f /dev/stdin -- " + " ".join(shlex.quote(path) for path in paths)
    try:
        result = run_with_input(host, command, (os.environ[settings.geli_passphrase_env] + "\n").encode(),
                                timeout=SEARCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "timeout", [], f"no answer within {SEARCH_TIMEOUT} s"
    return result.returncode, result.stdout.decode(errors="replace").splitlines(), \
        result.stderr.decode(errors="replace")


def test_no_geli_metadata_backup(host, search_paths):
    """A metadata backup (/var/backups/md10.eli) undoes a `geli kill`: with the passphrase, the vault opens again."""
    found = find_files(host, search_paths, ["*.eli"])
    assert not found, f"GELI metadata backups on the unencrypted disk: {found}"


def test_no_key_or_passphrase_files(host, search_paths):
    """A keyfile or passphrase file next to the image is the key to the vault, handed over with the server."""
    found = find_files(host, search_paths, KEY_FILE_PATTERNS)
    assert not found, f"key or passphrase files on the unencrypted disk: {found}"


def test_passphrase_not_on_disk(host, settings, search_paths):
    """The passphrase in any file (a script, a shell history, a log) opens the vault for whoever holds the disk."""
    outcome = passphrase_search(host, settings, search_paths)
    if outcome is None:
        pytest.skip(f"the passphrase is not known to this run: set {settings.geli_passphrase_env} to search for it")
    status, files, errors = outcome
    assert not files, f"the GELI passphrase is written in: {files}"
    assert status == 1, f"the search did not finish cleanly (grep exit {status}): {errors}"


def test_master_key_offline(host, settings):
    """With offline keys, an ed25519 master key on the relay lets whoever seizes it impersonate the relay for good."""
    if not getattr(settings, "offline_master_key", False):
        pytest.skip("offline master keys are not configured (no offline_master_key setting set to True)")
    require_jail_root_mounted(host, settings)
    keys = f"{settings.jail_root}/var/db/tor/keys"
    found = [name for name in MASTER_KEY_FILES if host.file(f"{keys}/{name}").exists]
    assert not found, f"master key files in {keys}: {found}"
