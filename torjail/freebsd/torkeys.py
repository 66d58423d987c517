"""tor's keys directory in the jail: which key files are there, when the signing certificate expires, and placing
offline-made keys in it.

Key bytes travel only on a command's standard input (base64, which the shell pipes to `base64 -d`), and are
written by a shell inside the jail (`jexec`) or its root (`chroot`), so a path the jail redirected with a symlink
still ends inside the jail root. They are asked for only when pyinfra executes the operation: a `--dry` run, and
pyinfra's planning pass, never make or decrypt a key.
"""

from __future__ import annotations

import base64
from shlex import quote

from pyinfra.api import FactBase, QuoteString, StringCommand, operation
from pyinfra import host

KEYS_DIRECTORY = "/var/db/tor/keys"
TOR_UID = "256"  # _tor in FreeBSD's ports (UIDs)
CERT_EXPIRY_OFFSET = 34  # a 32-byte "== ed25519v1-cert: type4 ==" header, version and type, then 4 bytes of hours


class KeyFiles(FactBase):
    """
    Returns the names of the files in a keys directory (a set; empty when there is no such directory).

    .. code:: python

        {"secret_id_key", "ed25519_signing_cert", "ed25519_signing_secret_key", "ed25519_master_id_public_key"}
    """

    def command(self, path):
        return f"if [ -d {quote(path)} ]; then ls -1A {quote(path)}; fi"

    def default(self):
        return set()

    def process(self, output):
        return {line.strip() for line in output if line.strip()}


class SigningCertExpiry(FactBase):
    """
    Returns when tor's ed25519 signing certificate at a path expires, in seconds since the epoch (None: no file).

    The certificate (tor's cert-spec) holds its expiry as hours since the epoch, big-endian, after the header.
    """

    def command(self, path):
        return f"if [ -f {quote(path)} ]; then od -An -tu1 -j{CERT_EXPIRY_OFFSET} -N4 {quote(path)}; fi"

    def process(self, output):
        octets = [int(word) for line in output for word in line.split()]
        if len(octets) != 4:
            return None
        return int.from_bytes(bytes(octets), "big") * 3600


class KeySource:
    """Key files made on demand ({name: bytes}), shown as a description in every pyinfra record."""

    def __init__(self, description, make):
        self.description = description
        self.make = make
        self._keys = None

    def keys(self):
        if self._keys is None:
            self._keys = self.make()
        return self._keys

    def __repr__(self):
        return self.description

    __str__ = __repr__


def _shell(jail_name, root, running):
    return ["jexec", QuoteString(jail_name)] if running else ["chroot", QuoteString(root)]


@operation()
def installed(jail_name: str, root: str, running: bool, source: KeySource, names: tuple):
    """
    Place key files, owned by _tor and mode 0600, in tor's keys directory (0700) of a jail.

    + jail_name: the jail (a shell inside it writes the files when it runs)
    + root: the jail's root (a chrooted shell writes them when the jail is not running)
    + running: whether the jail runs
    + source: a ``KeySource`` giving ``{name: bytes}``; asked only when pyinfra executes
    + names: the files to place

    **Example:**

    .. code:: python

        torkeys.installed("tor", "/var/jails/tor", True, KeySource("signing key", make), RELAY_FILES)
    """
    directory = KEYS_DIRECTORY
    owner = f"{TOR_UID}:{TOR_UID}"
    made = source.keys() if host.state.is_executing else {name: b"" for name in names}  # before any command
    yield StringCommand(*_shell(jail_name, root, running), "/bin/sh", "-c", QuoteString(
        f"umask 077 && mkdir -p {directory} && chown {owner} {directory} && chmod 700 {directory}"))
    for name in names:
        staging = f"{directory}/{name}.torjail-new"
        script = (f"umask 077 && base64 -d > {staging} && chown {owner} {staging} && chmod 600 {staging} && "
                  f"mv -f {staging} {directory}/{name}")
        yield StringCommand(*_shell(jail_name, root, running), "/bin/sh", "-c", QuoteString(script),
                            _stdin=base64.b64encode(made[name]).decode())
