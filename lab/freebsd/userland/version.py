"""The FreeBSD release a lab host presents (uname, freebsd-version, the mirror's release directory)."""

RELEASE = "14.3-RELEASE"
PATCH = "p4"
VERSION = f"{RELEASE}-{PATCH}"   # what uname -r and freebsd-version print
OSRELDATE = 1403000              # __FreeBSD_version of 14.3 (uname -K, -U)
MACHINE = "amd64"
KERNEL_IDENT = "GENERIC"
# The lab's update server (lab.mirror, freebsd-update's ServerName) publishes this newer patch level of RELEASE.
UPDATE_PATCH = "p5"
# End of life the update server's tag announces (seconds since the epoch: 2027-12-31 00:00 UTC). FreeBSD's tag
# carries the branch's real date (14.3: 2026-06-30); past it, `freebsd-update fetch` warns and exits 1.
UPDATE_EOL = 1830211200
