"""`make demo`: a relay deployed, previewed, rebooted and unlocked on a lab host, exactly as on a real server.

Every step runs the real pyinfra CLI over real SSH against the lab host (a FreeBSD stand-in in a network
namespace): deploy.py, a `--dry --diff` preview of a settings change, a reboot (the image locks), unlock.py, and the
testinfra suite that verifies the host. The demo's GELI passphrase is made once and kept in the lab directory on
this machine (mode 0600, outside the repository), so a second `make demo` unlocks the same image.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from lab import host, paths

NAME = os.environ.get("TORJAIL_LAB_HOST", "lab1")
ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PREVIEW_CHANGE = '{"bandwidth_rate": "3 MBytes", "admin_networks": ["198.18.0.0/15", "192.0.2.0/24"]}'


def passphrase():
    """The demo's passphrase: made once, kept readable by root only in the lab directory."""
    path = Path(paths.lab_dir()) / "demo-passphrase"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def step(title):
    print(f"\n==> {title}", flush=True)


def run(argv, env=None, check=True):
    print("$ " + " ".join(str(arg) for arg in argv), flush=True)
    result = subprocess.run([str(arg) for arg in argv], cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise SystemExit(f"demo: step failed ({result.returncode}): {' '.join(str(arg) for arg in argv)}")
    return result.returncode


def on_lab(command):
    status, output, error = host.ssh(NAME, command)
    print(f"[{NAME}]$ {command}\n{output}{error}", end="" if (output + error).endswith("\n") else "\n", flush=True)
    return status


def main():
    try:
        host.require_root()
    except host.LabError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    env = {**os.environ, "TORJAIL_LAB_HOST": NAME, "TORJAIL_GELI_PASSPHRASE": passphrase()}
    ssh = f"ssh -F {paths.ssh_config_path(NAME)} {NAME}"

    step(f"Bring up the lab host {NAME} (a FreeBSD stand-in reachable over SSH)")
    host.up(NAME)
    print(host.status(NAME)[1])

    if host.ssh(NAME, "test -e /var/jails/tor.img")[0] == 0:
        step("This lab host already has a relay: unlock it first (unlock.py does nothing if it runs)")
        run([BIN / "pyinfra", "lab/inventory.py", "unlock.py", "-y"], env=env)

    step("Check the settings and every generated file, no server needed")
    run([BIN / "python", "-m", "torjail", "check", "lab/inventory.py"], env=env)

    step("Deploy: pyinfra lab/inventory.py deploy.py")
    run([BIN / "pyinfra", "lab/inventory.py", "deploy.py", "-y"], env=env)
    on_lab("jls; sockstat -4 -l; geli status; pfctl -s info | head -1")

    step("Deploy again: a converged server changes nothing")
    run([BIN / "pyinfra", "lab/inventory.py", "deploy.py", "-y"], env=env)

    step(f"Preview a settings change ({PREVIEW_CHANGE}): pyinfra --dry --diff changes nothing")
    run([BIN / "pyinfra", "lab/inventory.py", "deploy.py", "-y", "--dry", "--diff"],
        env={**env, "TORJAIL_LAB_SETTINGS": PREVIEW_CHANGE})

    step("Reboot: the jail stops and the encrypted image stays locked")
    host.reboot(NAME)
    on_lab("jls; geli status; mdconfig -l")

    step("Unlock after the reboot: pyinfra lab/inventory.py unlock.py")
    run([BIN / "pyinfra", "lab/inventory.py", "unlock.py", "-y"], env=env)
    on_lab("jls; sockstat -4 -l")

    step("Verify the host against its settings: the testinfra suite in tests/host")
    verified = run(["make", "--no-print-directory", "verify", f"HOST={NAME}",
                    f"SSH_CONFIG={paths.ssh_config_path(NAME)}", "INVENTORY=lab/inventory.py"], env=env, check=False)

    step("What was built")
    print(f"""A Tor relay runs in the jail "tor" on {NAME} ({paths.address(host.read_state(NAME)['index'])}):
  - its root is /var/jails/tor.img, attached as md10 and GELI-encrypted (md10.eli), locked after every reboot;
  - swap is GELI one-time encrypted, crash dumps are off;
  - pf redirects the ORPort and DirPort to the jail and rate-limits sshd;
  - the testinfra suite {'passed' if verified == 0 else 'FAILED (see above)'}.
Look around:   {ssh}
Files:         .venv/bin/python -m torjail render lab/inventory.py --host {NAME} --out /tmp/{NAME}
Tear down:     .venv/bin/python -m lab destroy {NAME}""")
    return verified


if __name__ == "__main__":
    sys.exit(main())
