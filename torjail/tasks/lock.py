"""The deploy lock: a second deploy (or unlock) against a server stops, saying since when the first one runs.

See torjail.procedures.deploylock for how the lock lives on the server and why it ends with the SSH session.
"""

import time

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError

from torjail.procedures.deploylock import DeployLock
from torjail.freebsd import readings


def acquire():
    """Take the server's deploy lock for the rest of this run, or stop with who holds it."""
    holder = readings.fact(DeployLock)
    if holder is None:
        return
    if holder.get("no_ssh"):
        raise PyinfraError(f"{host.name}: the deploy lock needs an SSH session to the server (use pyinfra's @ssh "
                           "connector)")
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder["since"])) if holder["since"] else "a while"
    raise PyinfraError(
        f"{host.name}: another deploy is running on {host.name} since {since} (its SSH session is sshd process "
        f"{holder['sshd']} there); nothing was changed. Wait for it to end; if no deploy is running, that SSH "
        f"session is stale: end it there (kill {holder['sshd']}) and deploy again")
