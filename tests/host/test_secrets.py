"""Secrets that must never rest on the server's unencrypted disk: a GELI metadata backup, a keyfile or passphrase
file, the passphrase itself anywhere in any file, and the relay's ed25519 master key when it is kept offline.

"The unencrypted disk" is every file reachable from / except the encrypted jail root, the image (ciphertext)
and filesystems that are not on a disk (devfs, tmpfs, nullfs, ...). After a seizure, each of these secrets
would open the vault or let someone impersonate the relay.
"""

import pytest

from host_checks import (
    find_geli_metadata,
    find_named_files,
    require_jail_root_mounted,
    search_for_secret,
    search_roots,
    unencrypted_exclusions,
)
from torjail.freebsd.mount import MountPoints

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


def test_no_geli_metadata_backup(host, search_paths):
    """A metadata backup (/var/backups/md10.eli, or any file holding GELI metadata) undoes a `geli kill`: with the
    passphrase, the vault opens again."""
    found = set(find_named_files(host, search_paths, ["*.eli"], SOURCE_TREES))
    found.update(find_geli_metadata(host, search_paths, SOURCE_TREES))
    assert not found, f"GELI metadata backups on the unencrypted disk: {sorted(found)}"


def test_no_key_or_passphrase_files(host, search_paths):
    """A keyfile or passphrase file next to the image is the key to the vault, handed over with the server."""
    found = find_named_files(host, search_paths, KEY_FILE_PATTERNS, SOURCE_TREES)
    assert not found, f"key or passphrase files on the unencrypted disk: {found}"


def test_passphrase_not_on_disk(host, settings, search_paths):
    """The passphrase in any file (a script, a shell history, a log) opens the vault for whoever holds the disk."""
    outcome = search_for_secret(host, settings.geli_passphrase_env, search_paths)
    if outcome is None:
        pytest.skip(f"the passphrase is not known to this run: set {settings.geli_passphrase_env} to search for it")
    assert not outcome.files, f"the GELI passphrase is written in: {outcome.files}"
    assert outcome.complete, f"the search did not finish cleanly: {outcome.errors}"


def test_master_key_offline(host, settings):
    """With offline keys, an ed25519 master key on the relay lets whoever seizes it impersonate the relay for good."""
    if settings.kind != "relay" or not settings.offline_master_key:
        pytest.skip("identity is 'on-relay' (or an onion service): no offline master key to keep off the jail")
    require_jail_root_mounted(host, settings)
    keys = f"{settings.jail_root}/var/db/tor/keys"
    found = [name for name in MASTER_KEY_FILES if host.file(f"{keys}/{name}").exists]
    assert not found, f"master key files in {keys}: {found}"
