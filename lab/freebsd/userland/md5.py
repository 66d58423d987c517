"""md5(1) of FreeBSD and its other names (sha1, sha224, sha256, sha384, sha512): `ALGO (FILE) = DIGEST`,
-q prints the bare digest, -r puts it first (`DIGEST FILE`), -s STRING digests a string, -c DIGEST compares.
The GNU-style names (sha256sum...) are GNU coreutils' programs, which FreeBSD 14's md5 imitates."""

import getopt
import hashlib
import os
import sys

ALGORITHMS = {"md5": ("MD5", "md5"), "sha1": ("SHA1", "sha1"), "sha224": ("SHA224", "sha224"),
              "sha256": ("SHA256", "sha256"), "sha384": ("SHA384", "sha384"), "sha512": ("SHA512", "sha512")}


def _digest(algorithm, stream):
    digest = hashlib.new(algorithm)
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def main(argv):
    program = os.path.basename(argv[0])
    label, algorithm = ALGORITHMS.get(program, ALGORITHMS["md5"])
    usage = f"usage: {program} [-pqrtx] [-c string] [-s string] [files ...]"
    try:
        opts, files = getopt.getopt(argv[1:], "c:pqrs:tx")
    except getopt.GetoptError as err:
        print(f"{program}: illegal option -- {err.opt}", file=sys.stderr)
        print(usage, file=sys.stderr)
        return 1
    quiet = any(o == "-q" for o, _ in opts)
    reverse = any(o == "-r" for o, _ in opts)
    expected = next((v.lower() for o, v in opts if o == "-c"), None)
    status = 0

    def report(name, value, quoted=False):
        nonlocal status
        shown = f'"{name}"' if quoted else name
        if quiet:
            print(value)
        elif reverse:
            print(f"{value} {shown}")
        else:
            print(f"{label} ({shown}) = {value}")
        if expected is not None and value != expected:
            status = 2

    for opt, value in opts:
        if opt == "-s":
            report(value, hashlib.new(algorithm, value.encode()).hexdigest(), quoted=True)
    for name in files:
        try:
            with open(name, "rb") as handle:
                report(name, _digest(algorithm, handle))
        except OSError as err:
            print(f"{program}: {name}: {err.strerror}", file=sys.stderr)
            status = 1
    if not files and not any(o == "-s" for o, _ in opts):
        value = _digest(algorithm, sys.stdin.buffer)
        print(value)
        if expected is not None and value != expected:
            status = 2
    return status
