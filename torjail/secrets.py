"""Where the GELI passphrase comes from: an environment variable, a command (a password manager), or a prompt.

The passphrase only ever lives in this process's memory and goes to the server on a command's standard input.
It is held as pyinfra's HiddenValue (printed as *MASKED*), never part of a command line, and never written to
disk by torjail.
"""

import getpass
import os
import subprocess
import sys

from pyinfra.api import HiddenValue


class PassphraseError(RuntimeError):
    """No usable passphrase for a host; the message names the host and the source, never the secret."""


_CACHE = {}


def _validated(host_name, source, value):
    value = value.rstrip("\n")
    if not value:
        raise PassphraseError(f"{host_name}: the GELI passphrase from {source} is empty")
    if "\n" in value or "\r" in value or "\0" in value:
        raise PassphraseError(f"{host_name}: the GELI passphrase from {source} spans several lines; "
                              "geli reads only the first line of standard input")
    return HiddenValue(value)


def _from_command(settings):
    command = settings.geli_passphrase_command
    source = f"geli_passphrase_command ({command[0]})"
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PassphraseError(f"{settings.relay_name}: {source} could not run: {type(error).__name__}") from None
    if result.returncode != 0:
        raise PassphraseError(f"{settings.relay_name}: {source} exited {result.returncode}")
    return _validated(settings.relay_name, source, result.stdout.split("\n", 1)[0])


def geli_passphrase(settings, environ=None, interactive=None):
    """A relay's GELI passphrase: the environment variable named in the settings, else the command, else a
    prompt. Asked once per host and source: the relays of a host that share the host's passphrase settings get
    one prompt, a jail whose entry names its own variable or command gets its own (named HOST/JAIL)."""
    key = (settings.host_name, settings.geli_passphrase_env, tuple(settings.geli_passphrase_command or ()))
    if key in _CACHE:
        return _CACHE[key]
    environ = os.environ if environ is None else environ
    interactive = sys.stdin.isatty() if interactive is None else interactive
    name, relay = settings.geli_passphrase_env, settings.relay_name
    if environ.get(name):
        secret = _validated(relay, f"environment variable {name}", environ[name])
    elif settings.geli_passphrase_command:
        secret = _from_command(settings)
    elif interactive:
        secret = _validated(relay, "the prompt", getpass.getpass(f"GELI passphrase for {relay}: "))
    else:
        raise PassphraseError(
            f"{relay}: no GELI passphrase: set the environment variable {name}, "
            "or the setting geli_passphrase_command, or run from a terminal to be prompted")
    _CACHE[key] = secret
    return secret
