"""Validate a torrc with the real tor binary (`tor --verify-config`), strictly.

tor accepts obsolete options with a warning ("Skipping obsolete configuration option"); a relay operator wants to
know, so every warning counts as a problem except the two that only describe the checking machine.
"""

import os
import shutil
import subprocess
import sys
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


def main(argv=None):
    """`python -m torjail.checks.torrc FILE...`: print tor's complaints, exit 1 on any."""
    failed = False
    for path in (argv if argv is not None else sys.argv[1:]):
        with open(path) as handle:
            for problem in check_torrc(handle.read()):
                print(f"{path}: {problem}")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
