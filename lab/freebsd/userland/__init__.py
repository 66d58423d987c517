"""The BSD userland of a lab host: programs whose GNU versions behave differently from FreeBSD's (stat, sed,
date, grep, ps, uname...), FreeBSD-only programs (freebsd-version, md5/sha256, pw, rcorder) and the lab's init.

Each module has main(argv) -> exit status; MANIFEST lists `FREEBSD_PATH MODULE` and the root builder installs
a launcher at that path. scripts/ holds shell programs (rc.d scripts) installed as they are, by scripts/MANIFEST.
"""
