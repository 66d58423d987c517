"""The server's SSH host key, recorded on the operator's machine at deploy time and required by unlock.py.

Whoever images a seized server's clear disk has its SSH host keys, and could answer at its address to collect
the GELI passphrase at the next unlock. A rebuilt server gets new host keys, so the passphrase goes only to the
server presenting the key recorded when it was deployed: `secrets_dir/<host>/ssh_host_key`, one line `TYPE
BASE64` as a `.pub` file holds it (public data, kept 0600 in a 0700 directory like the rest of secrets_dir).

The key compared is the one the SSH connection pyinfra already holds presents (paramiko's transport), the very
connection every later command of the run, the passphrase's included, goes over. A deploy records it when there
is no record yet and stops, before anything on the server changes, when the server presents another; unlock.py
also stops when there is no record, or when the connector is not SSH and the key cannot be read at all.
"""

import base64
import binascii
import hashlib
import os

from pyinfra import logger
from pyinfra.api.exceptions import PyinfraError

from torjail.identity import host_dir, private_directory

RECORD = "ssh_host_key"


class HostKeyError(PyinfraError):
    """The server's host key is not the recorded one, or cannot be checked; the message says what to do."""


def record_path(settings):
    return host_dir(settings) / RECORD


def fingerprint(blob):
    """The key's SHA256 fingerprint as `ssh-keygen -l` prints it (unpadded base64)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _described(key):
    key_type, blob = key
    return f"{key_type} {fingerprint(blob)}"


def _server_file(key_type):
    """Where a FreeBSD server keeps the public host key of this type, to read it on its console."""
    name = "ecdsa" if key_type.startswith("ecdsa-") else key_type.removeprefix("ssh-")
    return f"/etc/ssh/ssh_host_{name}_key.pub"


def presented_key(connector):
    """(type, key blob) of the host key the connector's live SSH connection presents, or None (not SSH, or not
    connected)."""
    client = getattr(connector, "client", None)
    get_transport = getattr(client, "get_transport", None)
    transport = get_transport() if get_transport else None
    if transport is None or not transport.is_active():
        return None
    key = transport.get_remote_server_key()
    return key.get_name(), key.asbytes()


def _parse(text):
    """(type, key blob) of a record's line: TYPE BASE64, optionally a comment, as a .pub file holds it."""
    fields = text.split()
    try:
        key_type, blob = fields[0], base64.b64decode(fields[1], validate=True)
    except (IndexError, binascii.Error):
        return None
    named = blob[4:4 + int.from_bytes(blob[:4], "big")] if len(blob) > 4 else b""
    return (key_type, blob) if named == key_type.encode() and len(text.strip().splitlines()) == 1 else None


def recorded_key(settings):
    """(type, key blob) of the host's record, or None when there is none."""
    path = record_path(settings)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise HostKeyError(f"{settings.host_name}: cannot read the SSH host key record {path}: {error}") from None
    key = _parse(text)
    if key is None:
        raise HostKeyError(f"{settings.host_name}: {path} is not an SSH host key record (setting 'secrets_dir'): "
                           "expected one line 'TYPE BASE64', as the server's /etc/ssh/ssh_host_*_key.pub holds it")
    return key


def record(settings, key):
    """Write the record of key, in a new 0600 file (never over an existing record)."""
    key_type, blob = key
    private_directory(host_dir(settings))
    handle = os.open(record_path(settings), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "w") as out:
        out.write(f"{key_type} {base64.b64encode(blob).decode()}\n")


def _require_same(settings, recorded, presented, outcome):
    if recorded == presented:
        return
    path = record_path(settings)
    raise HostKeyError(
        f"{settings.host_name}: the server's SSH host key is not the one recorded at deploy time: {path} holds "
        f"{_described(recorded)}, the server presents {_described(presented)}; {outcome}. If the server was "
        f"rebuilt, check {fingerprint(presented[1])} out of band (on its console: ssh-keygen -l -f "
        f"{_server_file(presented[0])}), then remove {path} and deploy again, which records the key it meets. "
        "Otherwise another machine may be answering at this address")


def pinned(settings, connector):
    """Deploy: record the presented key when there is no record, stop when it differs from the record."""
    presented = presented_key(connector)
    if presented is None:
        logger.warning(f"{settings.host_name}: note: the server's SSH host key cannot be read through pyinfra's "
                       f"{type(connector).__name__}: it is neither checked nor recorded, and unlock.py will refuse "
                       "to send the GELI passphrase to this server")
        return
    recorded = recorded_key(settings)
    if recorded is None:
        record(settings, presented)
        logger.info(f"{settings.host_name}: recorded the server's SSH host key {_described(presented)} in "
                    f"{record_path(settings)}")
        return
    _require_same(settings, recorded, presented, "nothing was changed")


def verified(settings, connector):
    """Unlock: go on only when the connection presents the recorded key; otherwise stop, with nothing sent."""
    nothing_sent = "the GELI passphrase was not sent and nothing was changed"
    presented = presented_key(connector)
    if presented is None:
        raise HostKeyError(
            f"{settings.host_name}: the server's SSH host key cannot be checked through pyinfra's "
            f"{type(connector).__name__}: unlock.py sends the GELI passphrase only over SSH (@ssh) to the server "
            f"whose host key deploy.py recorded; {nothing_sent}")
    recorded = recorded_key(settings)
    if recorded is None:
        path = record_path(settings)
        raise HostKeyError(
            f"{settings.host_name}: no SSH host key is recorded for this server ({path} does not exist), and the "
            f"GELI passphrase goes only to the server whose key was recorded at deploy time; {nothing_sent}. "
            f"The server presents {_described(presented)}: check it out of band (on its console: ssh-keygen -l "
            f"-f {_server_file(presented[0])}), then run deploy.py, which records it, or put that file's line in "
            f"{path}")
    _require_same(settings, recorded, presented, nothing_sent)
