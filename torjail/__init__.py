"""torjail: a FreeBSD server becomes a Tor relay in a GELI-encrypted jail, described in one repository."""
