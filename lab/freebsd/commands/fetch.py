"""fetch(1): retrieve a file by URL (the lab's mirror serves base.txz over HTTPS), with fetch's messages.

On success fetch prints one statistics line on stderr (unless -q); on failure `fetch: URL: REASON` and
exit status 1. -m only downloads when the remote file differs in size or date, -s prints the size only.
https peers are verified as libfetch does: against SSL_CA_CERT_FILE / SSL_CA_CERT_PATH when set, else
OpenSSL's default locations on FreeBSD, /etc/ssl/cert.pem and /etc/ssl/certs (never Debian's store);
SSL_NO_VERIFY_PEER turns the check off. A peer that fails it: OpenSSL's error on stderr, then
`fetch: URL: Authentication error` (libfetch sets EAUTH), exit status 1.
"""

import email.utils
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from lab.freebsd import cli

USAGE = """usage: fetch [-146AadFlMmnPpqRrsUv] [-B bytes] [--bind-address=host]
       [--ca-cert=file] [--ca-path=dir] [--cert=file] [--crl=file]
       [-i file] [--key=file] [-N file] [--no-passive] [--no-proxy=list]
       [--no-sslv3] [--no-tlsv1] [--no-verify-hostname] [--no-verify-peer]
       [-o file] [--referer=URL] [-S bytes] [-T seconds]
       [--user-agent=agent-string] [-w seconds] URL ...
       fetch [-146AadFlMmnPpqRrsUv] [-B bytes] [--bind-address=host]
       [--ca-cert=file] [--ca-path=dir] [--cert=file] [--crl=file]
       [-i file] [--key=file] [-N file] [--no-passive] [--no-proxy=list]
       [--no-sslv3] [--no-tlsv1] [--no-verify-hostname] [--no-verify-peer]
       [-o file] [--referer=URL] [-S bytes] [-T seconds]
       [--user-agent=agent-string] [-w seconds] -h host -f file [-c dir]"""
CHUNK = 1 << 16
REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


FREEBSD_CA_FILE, FREEBSD_CA_PATH = "/etc/ssl/cert.pem", "/etc/ssl/certs"


def _tls_context():
    """The peer verification of libfetch's fetch_ssl_setup_peer_verification()."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if os.environ.get("SSL_NO_VERIFY_PEER") is not None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    cafile = os.environ.get("SSL_CA_CERT_FILE") or (FREEBSD_CA_FILE if os.path.isfile(FREEBSD_CA_FILE) else None)
    capath = os.environ.get("SSL_CA_CERT_PATH") or (FREEBSD_CA_PATH if os.path.isdir(FREEBSD_CA_PATH) else None)
    if cafile or capath:
        try:
            context.load_verify_locations(cafile=cafile, capath=capath)
        except (OSError, ssl.SSLError):
            pass  # libfetch goes on with an empty store: every peer then fails verification
    if os.environ.get("SSL_NO_VERIFY_HOSTNAME") is not None:
        context.check_hostname = False
    return context


def _open(request, timeout):
    """urlopen with FreeBSD's verification; a failed handshake prints OpenSSL's error line first."""
    try:
        return urllib.request.urlopen(request, timeout=timeout, context=_tls_context())
    except urllib.error.URLError as error:
        if isinstance(error.reason, ssl.SSLError):
            print(f"{os.getpid():016X}:error:0A000086:SSL routines:tls_post_process_server_certificate:"
                  f"{error.reason.reason.lower().replace('_', ' ') if error.reason.reason else 'handshake failure'}",
                  file=sys.stderr)
            raise urllib.error.URLError(OSError(80, "Authentication error")) from error
        raise


def _reason(error):
    if isinstance(error, urllib.error.HTTPError):
        return REASONS.get(error.code, error.reason or str(error.code))
    reason = getattr(error, "reason", error)
    if isinstance(reason, OSError) and reason.strerror:
        if "Name or service not known" in reason.strerror or "not known" in reason.strerror:
            return "No address record"
        return reason.strerror
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return "Operation timed out"
    return str(reason)


def _statistics(name, size, seconds):
    rate = size / 1024 / max(seconds, 0.001)
    return f"{name:<46.46s}{size // 1024:>8} kB {rate:>4.0f} kBps {int(seconds):>4d}s"


def fetch(url, output, quiet, timeout, mirror):
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https", "file"):
        cli.warnx("fetch", f"{url}: Invalid URL")
        return 1
    started = time.monotonic()
    try:
        response = _open(url, timeout)
    except (urllib.error.URLError, OSError) as error:
        cli.warnx("fetch", f"{url}: {_reason(error)}")
        return 1
    with response:
        length = response.headers.get("Content-Length")
        modified = response.headers.get("Last-Modified")
        if mirror and output != "-" and os.path.exists(output) and length is not None and \
                os.path.getsize(output) == int(length):
            stamp = email.utils.parsedate_to_datetime(modified).timestamp() if modified else None
            if stamp is None or int(os.path.getmtime(output)) == int(stamp):
                return 0
        try:
            target = sys.stdout.buffer if output == "-" else open(output, "wb")
        except OSError as error:
            cli.warnx("fetch", f"{output}: open(): {error.strerror}")
            return 1
        received = 0
        try:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                target.write(chunk)
                received += len(chunk)
        except OSError as error:
            cli.warnx("fetch", f"{url}: {_reason(error)}")
            return 1
        finally:
            if output != "-":
                target.close()
    if length is not None and received < int(length):
        cli.warnx("fetch", f"{output}: size mismatch: expected {length}, actual {received}")
        return 1
    if modified and output != "-":
        stamp = email.utils.parsedate_to_datetime(modified).timestamp()
        os.utime(output, (stamp, stamp))
    if not quiet and output != "-":
        print(_statistics(output, received, time.monotonic() - started), file=sys.stderr)
    return 0


def main(argv):
    try:
        options, urls = cli.parse("fetch", argv[1:], "146AadFlMmnPpqRrsUvB:i:N:o:S:T:w:", USAGE)
    except cli.UsageError as error:
        return error.status
    flags = {letter[1] for letter, _ in options}
    values = {letter[1]: value for letter, value in options if value}
    if not urls:
        print(USAGE, file=sys.stderr)
        return 1
    timeout = float(values.get("T", 120))
    if "s" in flags:
        status = 0
        for url in urls:
            try:
                with _open(urllib.request.Request(url, method="HEAD"), timeout) as r:
                    print(r.headers.get("Content-Length", "Unknown"))
            except (urllib.error.URLError, OSError) as error:
                cli.warnx("fetch", f"{url}: {_reason(error)}")
                status = 1
        return status
    status = 0
    for url in urls:
        output = values.get("o") or os.path.basename(urllib.parse.urlparse(url).path) or "fetch.out"
        if output != "-" and os.path.isdir(output):
            output = os.path.join(output, os.path.basename(urllib.parse.urlparse(url).path))
        status |= fetch(url, output, "q" in flags, timeout, "m" in flags)
    return status
