"""Where the lab host keeps the Linux tools its emulated FreeBSD commands are built on.

Inside a lab host the Linux tools (ip, nsenter, unshare, nft, ...) and the interpreter of the emulated commands
live off PATH under /usr/libexec/lab/bin, so a shell on the lab host sees only FreeBSD's commands. The emulation
calls them by full path through this module.
"""

import os
import subprocess

TOOLS_DIR = os.environ.get("LAB_TOOLS_DIR", "/usr/libexec/lab/bin")


def tool(name):
    """Full path of one Linux tool of the lab host."""
    return os.path.join(TOOLS_DIR, name)


def python():
    """The interpreter that runs the emulated commands (and the lab's helper processes)."""
    return tool("python3")


def run(name, *args, check=True, stdin=subprocess.DEVNULL):
    """Run a Linux tool, capturing its output; raise CalledProcessError on failure when `check`."""
    return subprocess.run([tool(name), *args], check=check, capture_output=True, text=True, stdin=stdin)
