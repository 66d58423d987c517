"""The lab's FreeBSD mirror: base.txz and its MANIFEST, served over HTTPS on the machine.

The layout is that of a FreeBSD mirror, `releases/amd64/14.3-RELEASE/{base.txz,MANIFEST}`, so a deploy's
fetch-and-verify path runs unchanged against the mirror URL. base.txz is the lab's own base root with the
lab's code installed (a jail made from it is a lab root too: /bin/sh, the BSD userland, the emulated
commands), minus what an installer adds (rc.conf, fstab, loader.conf). MANIFEST lines follow FreeBSD's
release/scripts/make-manifest.sh: `base.txz<TAB>SHA256<TAB>ENTRIES<TAB>base<TAB>"Base system (MANDATORY)"<TAB>on`.

It also serves freebsd-update's metadata and files for the lab's release (lab.updates), under
`14.3-RELEASE/amd64/` as update.FreeBSD.org lays them out.

The server listens on 198.18.0.1:443 (on the machine's loopback), reachable from every lab host through its
default route, with a certificate from the lab's own CA (lab.tls) that lab hosts trust. `lab up` starts it, the
last `lab destroy` stops it.

Usage: python -m lab.mirror serve DIRECTORY ADDRESS PORT CERTIFICATE KEY
"""

import contextlib
import fcntl
import functools
import hashlib
import http.server
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

from lab import network, paths, rootfs, tls, updates
from lab.freebsd.userland import version

RELEASE_PATH = f"releases/amd64/{version.RELEASE}"
# boot/kernel: FreeBSD ships the kernel in kernel.txz, not base.txz (a jail root has none).
NOT_IN_BASE = ("etc/rc.conf", "etc/fstab", "boot/loader.conf", "etc/resolv.conf", ".kernel", ".lab-base",
               "boot/kernel")


def url():
    return paths.mirror_url()


def release_dir():
    return os.path.join(paths.mirror_dir(), RELEASE_PATH)


def _content_hash(base):
    """What base.txz is made of: the base recipe and every file of the lab package."""
    digest = hashlib.sha256()
    with open(os.path.join(base, ".lab-base"), "rb") as handle:
        digest.update(handle.read())
    for top, dirs, files in sorted(os.walk(rootfs.LAB_PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".pyc"):
                continue
            path = os.path.join(top, name)
            digest.update(os.path.relpath(path, rootfs.LAB_PACKAGE).encode() + b"\0")
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def manifest_line(txz):
    digest = hashlib.sha256()
    with open(txz, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    listing = subprocess.run(["tar", "-tJf", txz], check=True, capture_output=True).stdout
    entries = listing.count(b"\n")
    return f'base.txz\t{digest.hexdigest()}\t{entries}\tbase\t"Base system (MANDATORY)"\ton\n'


def relative_directory_links(root):
    """Make absolute symbolic links to directories relative. Debian's root has a few (runit's service links);
    FreeBSD's base.txz links directories relatively (/etc/unbound -> ../var/unbound), and torjail refuses to write
    a release over a jail root whose links lead to a directory outside it, as an absolute link does when the host
    follows it. Inside the jail both kinds resolve alike."""
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            if not os.path.islink(path):
                continue
            target = os.readlink(path)
            if target.startswith("/") and os.path.isdir(os.path.join(root, target.lstrip("/"))):
                os.unlink(path)
                os.symlink(os.path.relpath(os.path.join(root, target.lstrip("/")), top), path)


def build(base, log=print):
    """(Re)build base.txz and MANIFEST when the base root or the lab's code changed."""
    target = release_dir()
    stamp = os.path.join(paths.mirror_dir(), ".content")
    wanted = _content_hash(base)
    if os.path.exists(stamp) and open(stamp).read() == wanted and os.path.exists(os.path.join(target, "MANIFEST")):
        return target
    started = time.monotonic()
    os.makedirs(target, exist_ok=True)
    staging = os.path.join(paths.mirror_dir(), "staging")
    shutil.rmtree(staging, ignore_errors=True)
    # A tree of hard links: install_lab() replaces files rather than writing into them, so the base stays intact.
    subprocess.run(["cp", "-al", base, staging], check=True)
    rootfs.install_lab(staging)
    for rel in NOT_IN_BASE:
        rootfs.remove_path(os.path.join(staging, rel))
    relative_directory_links(staging)
    txz = os.path.join(target, "base.txz")
    with open(txz + ".new", "wb") as out:
        tar = subprocess.Popen(["tar", "-C", staging, "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE)
        subprocess.run(["xz", "-T2", "-1"], stdin=tar.stdout, stdout=out, check=True)
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError("tar of the mirror's base failed")
    os.replace(txz + ".new", txz)
    shutil.rmtree(staging)
    with open(os.path.join(target, "MANIFEST"), "w") as handle:
        handle.write(manifest_line(txz))
    with open(stamp, "w") as handle:
        handle.write(wanted)
    log(f"mirror: base.txz built in {time.monotonic() - started:.0f} s")
    return target


def _server_pid():
    """PID of this lab directory's mirror server, found by its command line, or None."""
    wanted = ["-m", "lab.mirror", "serve", paths.mirror_dir()]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv[1:5] == wanted:
            return int(entry)
    return None


def is_serving():
    return _server_pid() is not None


@contextlib.contextmanager
def _locked():
    """One lab command at a time builds, starts or stops the mirror."""
    os.makedirs(paths.lab_dir(), exist_ok=True)
    with open(os.path.join(paths.lab_dir(), "mirror.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure(base, log=print):
    """Build what is missing and make sure the server runs."""
    with _locked():
        return _ensure(base, log)


def _ensure(base, log):
    build(base, log)
    updates.publish(paths.mirror_dir())
    tls.ensure_mirror_certificate()
    network.ensure_mirror_address()
    if is_serving():
        return url()
    package_parent = os.path.dirname(rootfs.LAB_PACKAGE)
    with open(os.path.join(paths.lab_dir(), "mirror.log"), "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lab.mirror", "serve", paths.mirror_dir(), paths.MIRROR_ADDRESS,
             str(paths.MIRROR_PORT), *paths.mirror_certificate_paths()],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=package_parent, start_new_session=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": package_parent})
    for _ in range(50):
        try:
            with socket.create_connection((paths.MIRROR_ADDRESS, paths.MIRROR_PORT), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    time.sleep(0.2)
    if proc.poll() is not None:
        raise RuntimeError(f"the mirror's server exited (is {paths.MIRROR_ADDRESS}:{paths.MIRROR_PORT} taken?); "
                           f"see {paths.lab_dir()}/mirror.log")
    log(f"mirror: serving {url()}/{RELEASE_PATH}/")
    return url()


def stop_unless_used(in_use):
    """Stop the server and drop its address, unless in_use() (asked under the lock) says a lab host needs it."""
    with _locked():
        if not in_use():
            _stop()
            network.remove_mirror_address()


def _stop():
    pid = _server_pid()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.1)


def serve(directory, address, port, certificate, key):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
    server = http.server.ThreadingHTTPServer((address, port), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    # The handshake happens in the request's thread, so that one slow client does not hold up the others.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 7 or sys.argv[1] != "serve":
        sys.exit(__doc__.rsplit("Usage: ", 1)[1])
    serve(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6])
