"""torjail's own procedures: pyinfra facts and operations that know torjail's markers, records, layout and rules.

They are built on the generic FreeBSD facts and operations of torjail.freebsd, and are what the tasks call
where a plain FreeBSD operation would not keep torjail's promises (an image made safe to interrupt, a pf load
that cannot lock the operator out, relay keys written where the jail cannot redirect them).

    image       a new encrypted image made safe to interrupt, the record of every image made; unlocking one
    pfguard     loading a pf ruleset under a rollback guard that a fresh SSH login cancels
    deploylock  one deploy at a time on a server
    torkeys     tor's keys directory in the jail: key files, digests, fingerprints, placing and reading keys
    release     a release's base.txz: fetched, verified against a pinned sha256, unpacked once
    files       files checked on the server before they replace the live one
"""
