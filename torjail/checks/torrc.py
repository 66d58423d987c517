"""Validate a torrc with the real tor binary (`tor --verify-config`), strictly.

tor accepts obsolete options with a warning ("Skipping obsolete configuration option"); a relay operator wants to
know, so every warning counts as a problem except the two that only describe the checking machine.
"""

import os
import re
import shutil
import subprocess
import tempfile

# Warnings about the machine running the check, not about the torrc.
MACHINE_WARNINGS = ("You are running Tor as root",)


class TorNotFound(RuntimeError):
    """The tor binary is missing on the machine running the check."""


def tor_binary():
    path = shutil.which("tor") or shutil.which("tor", path="/usr/sbin:/usr/local/bin:/usr/bin")
    if not path:
        raise TorNotFound("tor is not installed on this machine (Debian: apt-get install tor): it validates every torrc")
    return path


def check_torrc(text):
    """Return tor's complaints about a torrc (empty when tor accepts it without a warning)."""
    with tempfile.TemporaryDirectory(prefix="torjail-torrc-") as tmp:
        path = os.path.join(tmp, "torrc")
        with open(path, "w") as handle:
            handle.write(text)
        result = subprocess.run(
            [tor_binary(), "--verify-config", "-f", path, "--defaults-torrc", os.devnull, "--hush"],
            capture_output=True, text=True, timeout=60,
        )
    output = (result.stdout + result.stderr).splitlines()
    problems = [
        line.split("] ", 1)[-1]
        for line in output
        if ("[warn]" in line or "[err]" in line) and not any(w in line for w in MACHINE_WARNINGS)
    ]
    if result.returncode != 0 and not problems:
        problems.append(f"tor --verify-config exited {result.returncode}")
    return problems


# torrc options and the settings they are written from; an address option's family tells its setting apart.
OPTION_SETTINGS = {
    "Nickname": "relay_nickname", "ContactInfo": "relay_contact", "Address": ("public_ipv4", "public_ipv6"),
    "ORPort": "or_port", "DirPort": "dir_port", "OutboundBindAddress": ("jail_ip", "public_ipv6"),
    "ExitPolicy": "exit_policy", "DirPortFrontPage": "exit_notice", "AccountingMax": "accounting_max",
    "AccountingStart": "accounting_start", "AccountingRule": "accounting_rule",
    "RelayBandwidthRate": "bandwidth_rate", "RelayBandwidthBurst": "bandwidth_burst",
}


def _setting_of(option, value):
    setting = OPTION_SETTINGS[option]
    if isinstance(setting, tuple):
        return setting[1] if ":" in value else setting[0]
    return setting


def settings_named(problem, text):
    """The settings a complaint of tor's is about: those whose torrc option it names or whose value it quotes.

    tor speaks of options and values, the operator of settings: `Malformed policy 'accept *:70000'` is about
    exit_policy, `RelayBandwidthRate is set to ...` about bandwidth_rate.
    """
    named = []
    for line in text.splitlines():
        option, _, value = line.partition(" ")
        if option not in OPTION_SETTINGS:
            continue
        if re.search(rf"\b{option}\b", problem) or (value and f"'{value}'" in problem):
            setting = _setting_of(option, value)
            if setting not in named:
                named.append(setting)
    return named


def check_torrc_settings(text):
    """tor's complaints about a torrc, each with the settings it is about (possibly none): [(settings, problem)]."""
    return [(settings_named(problem, text), problem) for problem in check_torrc(text)]
