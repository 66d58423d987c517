"""The FreeBSD release a lab host presents (uname, freebsd-version, the mirror's release directory)."""

RELEASE = "14.3-RELEASE"
PATCH = "p4"
VERSION = f"{RELEASE}-{PATCH}"   # what uname -r and freebsd-version print
OSRELDATE = 1403000              # __FreeBSD_version of 14.3 (uname -K, -U)
MACHINE = "amd64"
KERNEL_IDENT = "GENERIC"
