"""One deploy at a time on a server: an flock(2) lock held by lockf(1) for as long as the deploy's SSH session.

The lock is taken when the deploy starts reading the server (a fact itself, the first question of the deploy's
survey, so that a converged server gets one remote command in all: the lock must cover the reading as much as
the changing). A
holder runs detached under `lockf -k` and watches the sshd process of the deploy's SSH session: when that
session ends -- the deploy finished, was interrupted or lost its connection and sshd noticed -- the holder
ends and lockf releases the lock. The holder file names the lockf process, the sshd process it watches and
when the lock was taken. The firewall's fresh SSH login hands the lock over to its own session (handover).
"""

from __future__ import annotations

from pyinfra.api import FactBase

LOCK_FILE = "/var/run/torjail-deploy.lock"
HOLDER_FILE = "/var/run/torjail-deploy.holder"
WAIT_SECONDS = 3  # a holder notices the end of its session within a second: a quick re-run still gets the lock
# Sets $sshd to the sshd process of this SSH session: the nearest ancestor of this shell run by sshd (its name
# is sshd, or sshd-session since OpenSSH 9.8); empty outside an SSH session. One ps(1) for the whole process
# table, walked by awk(1), rather than two ps per ancestor.
FIND_SSHD = ('sshd=$(ps -ax -o pid= -o ppid= -o comm= | awk -v p="$$" '
             "'{ parent[$1] = $2; name[$1] = $3 } "
             "END { for (n = 0; p > 1 && n < 64; n++) { if (name[p] ~ /^sshd/) { print p; exit }; p = parent[p] } }')")
# The holder: records itself, then lives while the sshd process named in the holder file does.
HOLDER = (f'echo "$PPID $1 $(date +%s)" > {HOLDER_FILE}.new && mv -f {HOLDER_FILE}.new {HOLDER_FILE} && '
          f'while read -r _ watched _ < {HOLDER_FILE} && kill -0 "$watched" 2>/dev/null; do sleep 1; done')


class DeployLock(FactBase):
    """
    Takes the deploy lock of the server unless another deploy holds it. Returns None when this deploy holds it
    now, else who holds it:

    .. code:: python

        {"since": 1764760000, "sshd": 4242}

    or ``{"no_ssh": True}`` when the deploy does not run over SSH (there is no session to tie the lock to).
    """

    def command(self) -> str:
        return (f"{FIND_SSHD}; "
                'if [ -z "$sshd" ]; then echo no-ssh; exit 0; fi; '
                f"lockf -k -s -t {WAIT_SECONDS} {LOCK_FILE} sh -c '{HOLDER}' holder \"$sshd\" "
                "</dev/null >/dev/null 2>&1 & holder=$!; "
                'while kill -0 "$holder" 2>/dev/null; do '
                f'read -r locker _ < {HOLDER_FILE} 2>/dev/null; '
                'if [ "$locker" = "$holder" ]; then echo acquired; exit 0; fi; sleep 0.01; done; '
                f'wait "$holder"; echo "held $(cat {HOLDER_FILE} 2>/dev/null)"')

    def requires_command(self) -> str:
        return "lockf"

    @staticmethod
    def default():
        return None

    def process(self, output: list[str]):
        last = output[-1].split() if output else []
        if last == ["acquired"]:
            return None
        if last == ["no-ssh"]:
            return {"no_ssh": True}
        numbers = [int(word) for word in last[1:] if word.isdigit()]
        return {"since": numbers[2] if len(numbers) > 2 else None, "sshd": numbers[1] if len(numbers) > 1 else None}


def handover_command() -> str:
    """Run over a new SSH session of the deploy that holds the lock: the holder watches that session instead."""
    return (f"{FIND_SSHD}; "
            f'if [ -n "$sshd" ] && read -r locker _ since < {HOLDER_FILE} && kill -0 "$locker" 2>/dev/null; then '
            f'echo "$locker $sshd $since" > {HOLDER_FILE}.new && mv -f {HOLDER_FILE}.new {HOLDER_FILE}; fi')
