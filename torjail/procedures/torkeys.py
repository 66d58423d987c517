"""tor's keys in the jail: which key files a directory holds, their digests, when the signing certificate
expires, the relay's fingerprints and the onion service's address, placing keys, and reading them back for a
backup. A relay's keys are in tor's keys directory (KEYS_DIRECTORY), an onion service's in its HiddenServiceDir
(ONION_DIRECTORY); tor gives both, and every file in them, the same modes.

Key bytes travel only on a command's standard input (base64, which the shell pipes to `base64 -d`), and are
written by a shell inside the running jail (`jexec`), or by the host's shell under the root of a stopped jail after
refusing any symbolic link on the way (torjail.freebsd.jailfs): a path the jail redirected never leads out of it,
and no binary of the jail runs outside it. They are asked for only when pyinfra executes the operation: a `--dry` run, and
pyinfra's planning pass, never make or decrypt a key. Read back, they come only through `read_keys`, called while
pyinfra executes, whose output pyinfra never prints or logs (facts' output is printed at -vv).
"""

from __future__ import annotations

import base64
from shlex import quote

from pyinfra.api import FactBase, OperationError, QuoteString, StringCommand, operation
from pyinfra import host

from torjail.freebsd import jailfs
from torjail.render import ONION_DIR

KEYS_DIRECTORY = "/var/db/tor/keys"
ONION_DIRECTORY = ONION_DIR  # the onion service's HiddenServiceDir (templates/torrc-onion.j2)
ONION_HOSTNAME = ONION_DIRECTORY + "/hostname"  # its address, as tor writes it
FINGERPRINTS = {"rsa": "/var/db/tor/fingerprint", "ed25519": "/var/db/tor/fingerprint-ed25519"}
SAFE_NAME = "*[!A-Za-z0-9._-]*|-*|.*"  # a sh case pattern: names the shell loop skips
TOR_UID = "256"  # _tor in FreeBSD's ports (UIDs)
# What tor itself gives the keys directory and every file it writes there (check_private_dir, write_str_to_file),
# and so what the files placed here get.
KEYS_DIRECTORY_MODE = "700"
KEY_MODE = "600"
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


class KeyDigests(FactBase):
    """
    Returns the sha256 of each named file present in a jail's keys directory (a dict; a digest tells whether a
    key is the same without the key leaving the server). Read by a shell inside the jail, or its root.

    .. code:: python

        {"secret_id_key": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
    """

    def command(self, jail_name, root, running, directory, names):
        script = (f"cd \"$R\"{directory} 2>/dev/null || exit 0; for f in {' '.join(quote(n) for n in names)}; "
                  'do if [ -f "$f" ] && [ ! -L "$f" ]; then printf "%s " "$f"; sha256 -q "$f"; fi; done')
        words = jailfs.shell(jail_name, root, running, script, [directory])
        return f"if [ -d {quote(root + directory)} ]; then {StringCommand(*words)}; fi"

    def default(self):
        return {}

    def process(self, output):
        return dict(line.split() for line in output if len(line.split()) == 2)


class Fingerprints(FactBase):
    """
    Returns the relay's fingerprints as tor wrote them in a running jail ({"rsa": line, "ed25519": line}; a
    missing file is left out). They are public: tor publishes them.
    """

    def command(self, jail_name):
        script = "; ".join(f'if [ -f {path} ]; then printf "{kind} "; cat {path}; fi'
                           for kind, path in FINGERPRINTS.items())
        return f"jexec {quote(jail_name)} /bin/sh -c {quote(script)}"

    def default(self):
        return {}

    def process(self, output):
        found = {}
        for line in output:
            kind, _, text = line.partition(" ")
            if kind in FINGERPRINTS:
                found[kind] = text
        return found


class OnionAddress(FactBase):
    """
    Returns the onion service's address as its tor wrote it in a running jail (ONION_HOSTNAME; None before tor
    first started). It is public: it is what clients connect to.
    """

    def command(self, jail_name):
        script = f"if [ -f {ONION_HOSTNAME} ]; then cat {ONION_HOSTNAME}; fi"
        return f"jexec {quote(jail_name)} /bin/sh -c {quote(script)}"

    def process(self, output):
        lines = [line.strip() for line in output if line.strip()]
        return lines[0] if lines else None


def read_keys(host, jail_name, directory):
    """{name: bytes} of every file in a directory of keys in a running jail, read by a shell inside the jail;
    only while pyinfra executes, and never printed or logged."""
    script = (f"cd {directory} && for f in *; do case \"$f\" in {SAFE_NAME}) continue;; esac; "
              'if [ -f "$f" ] && [ ! -L "$f" ]; then printf "%s " "$f"; base64 < "$f" | tr -d "\\n"; echo; fi; done')
    command = StringCommand("jexec", QuoteString(jail_name), "/bin/sh", "-c", QuoteString(script))
    status, output = host.run_shell_command(command, print_output=False, print_input=False)
    if not status:
        raise OperationError(f"cannot read {directory} in jail {jail_name}: {output.stderr[-300:]}")
    keys = {}
    for line in output.stdout_lines:
        name, _, text = line.partition(" ")
        keys[name] = base64.b64decode(text, validate=True)
    return keys


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


@operation()
def installed(jail_name: str, root: str, running: bool, source: KeySource, names: tuple,
              never_replace: tuple = (), directory: str = KEYS_DIRECTORY):
    """
    Place key files, owned by _tor and mode 0600, in a directory (0700) of tor's in a jail.

    + jail_name: the jail (a shell inside it writes the files when it runs)
    + root: the jail's root (the host's shell writes under it when the jail is not running)
    + running: whether the jail runs
    + source: a ``KeySource`` giving ``{name: bytes}``; asked only when pyinfra executes
    + names: the files to place, in this order
    + never_replace: names of files that are left as they are, failing the operation, when the jail already
      holds one with other bytes (an identity key is never overwritten)
    + directory: where in the jail: tor's keys directory, or an onion service's HiddenServiceDir

    **Example:**

    .. code:: python

        torkeys.installed("tor", "/var/jails/tor", True, KeySource("signing key", make), RELAY_FILES)
    """
    owner = f"{TOR_UID}:{TOR_UID}"
    made = source.keys() if host.state.is_executing else {name: b"" for name in names}  # before any command
    here = f'"$R"{directory}'
    yield StringCommand(*jailfs.shell(jail_name, root, running,
                                      f"umask 077 && mkdir -p {here} && chown {owner} {here} && chmod {KEYS_DIRECTORY_MODE} {here}",
                                      [directory]))
    for name in names:
        staging = f'"$R"{directory}/{name}.torjail-new'
        target = f'"$R"{directory}/{name}'
        keep = (f"if [ -e {target} ] && ! cmp -s {staging} {target}; then rm -f {staging}; "
                f"echo '{directory}/{name} holds another key: not replaced' >&2; exit 1; fi && "
                ) if name in never_replace else ""
        script = (f"umask 077 && rm -f {staging} && base64 -d > {staging} && {keep}chown {owner} {staging} && "
                  f"chmod {KEY_MODE} {staging} && mv -f {staging} {target}")
        guarded = [f"{directory}/{name}.torjail-new", f"{directory}/{name}"]
        yield StringCommand(*jailfs.shell(jail_name, root, running, script, guarded),
                            _stdin=base64.b64encode(made[name]).decode())
