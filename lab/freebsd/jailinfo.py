"""Which jail a process belongs to, for ps(1) -J and the `jid` keyword (see lab.freebsd.jails)."""

from lab.freebsd import jails


def jid_of(pid):
    """The jid of the jail process `pid` runs in, 0 for the host."""
    return jails.jail_of_pid(pid)


def resolve(spec):
    """The jid of a jail given by name or jid, 0 for the host (`0`), None when there is no such jail."""
    if spec == "0":
        return 0
    jail = jails.find(spec)
    return jail["jid"] if jail else None
