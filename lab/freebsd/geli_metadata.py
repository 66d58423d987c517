"""On-disk GELI metadata of the lab: one sector at the end of the provider, as geli(8) keeps it.

The layout is the lab's own (little endian): magic "GEOM::ELI", version, flags, encryption algorithm, key
length, authentication algorithm, provider size, sector size, key slot mask, PBKDF2 iterations, salt, one
key-check value per slot, and an MD5 of all that. The user key is derived as geli derives it: HMAC-SHA512 over
the keyfiles' contents followed by PBKDF2-HMAC-SHA512(passphrase, salt). Only an HMAC of that key is stored,
never the passphrase or the key, so a wrong passphrase is detected and nothing on the disk reveals the right one.
"""

import hashlib
import hmac
import os
import struct

MAGIC = b"GEOM::ELI"
VERSION = 7
ITERATIONS = 20000
_HEAD = struct.Struct("<16sIIHHHQIBi64s64s64s")

EALGOS = {"AES-XTS": 22, "AES-CBC": 11, "CAMELLIA-CBC": 21, "NULL": 9}
ALGO_NAMES = {number: name for name, number in EALGOS.items()}
# Key lengths allowed per algorithm and the default (g_eli_keylen()).
KEYLENS = {"AES-XTS": ((128, 256), 128), "AES-CBC": ((128, 192, 256), 128),
           "CAMELLIA-CBC": ((128, 192, 256), 128), "NULL": ((0,), 0)}


class BadMetadata(Exception):
    pass


def parse_ealgo(text):
    """geli's algorithm names are case-insensitive and accept the short forms 'aes' and 'camellia'."""
    upper = text.upper()
    aliases = {"AES": "AES-XTS", "XTS": "AES-XTS", "CBC": "AES-CBC", "CAMELLIA": "CAMELLIA-CBC"}
    upper = aliases.get(upper, upper)
    return upper if upper in EALGOS else None


def keylen_for(ealgo, requested):
    allowed, default = KEYLENS[ealgo]
    if requested == 0:
        return default
    return requested if requested in allowed else 0


def user_key(salt, iterations, passphrase, keyfiles):
    """The key a passphrase (str or None) and keyfile contents (list of bytes) give, as geli computes it."""
    mac = hmac.new(b"", digestmod=hashlib.sha512)
    for content in keyfiles:
        mac.update(content)
    if passphrase is not None:
        if iterations == 0:
            mac.update(salt)
            mac.update(passphrase.encode())
        else:
            mac.update(hashlib.pbkdf2_hmac("sha512", passphrase.encode(), salt, iterations, 64))
    return mac.digest()


def _key_check(key, salt):
    return hmac.new(key, b"lab geli key check" + salt, hashlib.sha512).digest()


def new(ealgo, keylen, provsize, sectorsize, flags, passphrase, keyfiles, iterations=-1):
    """Metadata for `geli init`: a fresh salt and key slot 0 set from the passphrase and keyfiles.
    iterations -1 means "choose" (or no passphrase at all)."""
    salt = os.urandom(64)
    if passphrase is None:
        iterations = -1
    elif iterations == -1:
        iterations = ITERATIONS
    key = user_key(salt, iterations, passphrase, keyfiles)
    return {"version": VERSION, "flags": flags, "ealgo": ealgo, "keylen": keylen, "aalgo": 0,
            "provsize": provsize, "sectorsize": sectorsize, "keys": 1, "iterations": iterations,
            "salt": salt, "checks": [_key_check(key, salt), os.urandom(64)]}


def encode(md):
    head = _HEAD.pack(MAGIC, md["version"], md["flags"], EALGOS[md["ealgo"]], md["keylen"], md["aalgo"],
                      md["provsize"], md["sectorsize"], md["keys"], md["iterations"], md["salt"],
                      md["checks"][0], md["checks"][1])
    return head + hashlib.md5(head).digest()


def decode(sector):
    """Parse a metadata sector; raises BadMetadata when there is none or it is damaged."""
    if sector is None or len(sector) < _HEAD.size + 16:
        raise BadMetadata("short")
    head, digest = sector[: _HEAD.size], sector[_HEAD.size: _HEAD.size + 16]
    fields = _HEAD.unpack(head)
    if fields[0].rstrip(b"\0") != MAGIC:
        raise BadMetadata("magic")
    if hashlib.md5(head).digest() != digest:
        raise BadMetadata("checksum")
    (_magic, version, flags, ealgo, keylen, aalgo, provsize, sectorsize, keys, iterations, salt,
     check0, check1) = fields
    if ealgo not in ALGO_NAMES:
        raise BadMetadata("algorithm")
    return {"version": version, "flags": flags, "ealgo": ALGO_NAMES[ealgo], "keylen": keylen, "aalgo": aalgo,
            "provsize": provsize, "sectorsize": sectorsize, "keys": keys, "iterations": iterations,
            "salt": salt, "checks": [check0, check1]}


def matching_slot(md, passphrase, keyfiles):
    """The key slot the passphrase and keyfiles open, or None (a wrong key)."""
    key = user_key(md["salt"], md["iterations"], passphrase, keyfiles)
    check = _key_check(key, md["salt"])
    for slot in (0, 1):
        if md["keys"] & (1 << slot) and hmac.compare_digest(md["checks"][slot], check):
            return slot
    return None
