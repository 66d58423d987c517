"""The lab host's life cycle, its root filesystem and its mirror, checked from the machine and over real SSH."""

import hashlib
import os
import ssl
import subprocess
import sys
import urllib.request

import pytest

from lab import host, mirror, paths, rootfs

pytestmark = pytest.mark.lab

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CYCLE_HOST, CYCLE_INDEX = "labcycle", 8


def process_alive(pid):
    """True while the process exists and is not a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def lab_cli(*args):
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, cwd=REPO, timeout=600)


def test_up_again_changes_nothing_and_status_says_running(lab_host):
    pid = host.init_pid(lab_host.name)
    assert pid is not None
    result = lab_cli("up", lab_host.name)
    assert result.returncode == 0, result.stderr
    assert host.init_pid(lab_host.name) == pid
    status = lab_cli("status", lab_host.name)
    assert status.returncode == 0
    assert f"{lab_host.name}: running" in status.stdout
    assert lab_host.address in status.stdout
    assert f"ssh -F {lab_host.ssh_config} {lab_host.name}" in status.stdout
    assert mirror.url() in status.stdout


def test_status_of_an_unknown_host_fails():
    result = lab_cli("status", "nosuchlabhost")
    assert result.returncode == 1
    assert "nosuchlabhost: absent" in result.stdout


def test_ssh_reaches_a_freebsd_host_with_strict_host_keys(lab_host, lab_run):
    status, out, err = lab_run("uname -s; hostname")
    assert status == 0, err
    assert out.split() == ["FreeBSD", lab_host.name]
    with open(lab_host.ssh_config) as handle:
        assert "StrictHostKeyChecking yes" in handle.read()
    # A wrong host key is refused: the check is real.
    bad = lab_host.known_hosts + ".wrong"
    with open(lab_host.known_hosts) as handle:
        line = handle.read().split()
    other_key = subprocess.run(["ssh-keygen", "-y", "-f", lab_host.key], capture_output=True, text=True).stdout.split()
    with open(bad, "w") as handle:
        handle.write(f"{line[0]} {other_key[0]} {other_key[1]}\n")
    result = subprocess.run(["ssh", "-F", lab_host.ssh_config, "-o", "ControlPath=none",
                             "-o", f"UserKnownHostsFile={bad}", lab_host.name, "true"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    os.unlink(bad)
    assert result.returncode == 255


def test_the_session_shell_is_freebsds(lab_run):
    status, out, err = lab_run("echo $0; grep '^root:' /etc/passwd | cut -d: -f7; id -gn")
    assert status == 0, err
    assert out.split() == ["sh", "/bin/sh", "wheel"]
    for program in ("bash", "python3", "python", "ip", "ss", "systemctl", "useradd", "lsblk", "losetup", "perl"):
        status, out, _ = lab_run(f"command -v {program}")
        assert status != 0 and out == "", f"{program} is on PATH: {out}"
    status, _, _ = lab_run("test ! -e /bin/bash && test ! -e /usr/bin/bash && test ! -e /usr/local/bin/bash")
    assert status == 0


def test_the_root_is_dressed_as_a_fresh_freebsd_vm(lab_host, lab_run):
    status, fstab, _ = lab_run("cat /etc/fstab")
    assert status == 0
    lines = [line.split() for line in fstab.splitlines() if line and not line.startswith("#")]
    assert ["/dev/vtbd0p2", "/", "ufs", "rw", "1", "1"] in lines
    assert ["/dev/vtbd0p3", "none", "swap", "sw", "0", "0"] in lines
    status, rc_conf, _ = lab_run("cat /etc/rc.conf")
    assert f'hostname="{lab_host.name}"' in rc_conf and 'sshd_enable="YES"' in rc_conf
    status, _, err = lab_run("test -f /boot/loader.conf && test -d /usr/local/etc/rc.d && test -d /etc/rc.d "
                             "&& test -x /etc/rc.d/sshd && test -d /var/backups")
    assert status == 0, err
    for tool in ("sh", "tar", "xz", "gzip", "find", "awk", "sort", "cat", "cp", "mv", "chmod", "chown", "mkdir",
                 "ln", "mktemp", "env", "id", "which", "touch", "head", "tail", "wc", "tr", "cut", "diff", "cmp",
                 "sha256", "sha1", "md5", "sha256sum", "sha1sum", "hostname", "sleep", "kill", "pw", "su",
                 "install", "sshd", "stat", "sed", "date", "grep", "ps", "uname", "freebsd-version"):
        status, _, _ = lab_run(f"command -v {tool}")
        assert status == 0, f"{tool} missing"


def test_nc_is_openbsds_as_in_freebsds_base(lab_run):
    status, out, err = lab_run("command -v nc; nc -h 2>&1 | head -1; "
                               "nc -lU /tmp/nc.sock > /tmp/nc.out & i=0; "
                               "while [ ! -S /tmp/nc.sock ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done; "
                               "echo over-unix | nc -N -U /tmp/nc.sock; wait; cat /tmp/nc.out; "
                               "nc -z -w 2 127.0.0.1 22 && echo sshd-open; nc -z -w 2 127.0.0.1 1 || echo port-1-closed")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "/usr/bin/nc" and lines[1].startswith("OpenBSD netcat"), out + err
    assert lines[2:] == ["over-unix", "sshd-open", "port-1-closed"], out + err


def test_no_linux_sysfs_in_sight(lab_run):
    """FreeBSD's /sys is a link to the kernel sources; the lab's sysfs is where FreeBSD's Linux compatibility puts
    linsysfs, and mount -p shows it so (a walk of the disk can leave it out); md still works."""
    status, out, err = lab_run("readlink /sys; ls /sys/ 2>&1; mount -p | awk '$3 == \"sysfs\"' | wc -l; "
                               "mount -p | awk '$3 == \"linsysfs\" { print $1, $2 }'; "
                               "find / -xdev -name 'loop*' -path '*block*' 2>/dev/null | wc -l")
    assert out.split("\n")[0] == "usr/src/sys", out + err
    assert "No such file or directory" in out
    assert out.split()[-4:] == ["0", "linsysfs", "/compat/linux/sys", "0"], out
    status, out, err = lab_run("truncate -s 8m /tmp/sysfs.img && md=$(mdconfig -a -t vnode -f /tmp/sysfs.img) && "
                               "mdconfig -l -v && newfs -U /dev/$md >/dev/null && mdconfig -d -u $md; rm /tmp/sysfs.img")
    assert status == 0, err
    assert "/tmp/sysfs.img" in out


def test_emulated_commands_and_the_lab_package_are_installed(lab_run):
    entries = rootfs.read_manifest(os.path.join(rootfs.LAB_PACKAGE, "freebsd", "commands", "MANIFEST"))
    entries += rootfs.read_manifest(os.path.join(rootfs.LAB_PACKAGE, "freebsd", "userland", "MANIFEST"))
    assert entries
    status, _, err = lab_run(" && ".join(f"test -x {path}" for path, _ in entries))
    assert status == 0, err
    status, out, err = lab_run("/usr/libexec/lab/bin/python3 -c 'import sys; sys.path.insert(0, \"/usr/libexec/lab\"); "
                               "import lab.freebsd.kernel as k; print(k.KERNEL_DIR)'")
    assert (status, out.strip()) == (0, "/.kernel"), err
    status, out, _ = lab_run("grep -c ' /.kernel tmpfs ' /proc/mounts; ls /usr/libexec/lab/bin | grep -cx -e ip -e losetup -e nsenter "
                             "-e unshare -e mkfs.ext4 -e nft")
    assert out.split() == ["1", "6"]


def test_the_mirror_serves_base_txz_and_a_freebsd_manifest(lab_host, lab_run, tmp_path):
    base_url = f"{mirror.url()}/{mirror.RELEASE_PATH}"
    assert base_url.startswith("https://")
    lab_ca = ssl.create_default_context(cafile=paths.mirror_ca_path())
    with urllib.request.urlopen(f"{base_url}/MANIFEST", timeout=30, context=lab_ca) as response:
        manifest = response.read().decode()
    fields = manifest.rstrip("\n").split("\t")
    assert fields[0] == "base.txz" and fields[3:] == ["base", '"Base system (MANDATORY)"', "on"]
    txz = tmp_path / "base.txz"
    with urllib.request.urlopen(f"{base_url}/base.txz", timeout=120, context=lab_ca) as response:
        txz.write_bytes(response.read())
    assert hashlib.sha256(txz.read_bytes()).hexdigest() == fields[1]
    listing = subprocess.run(["tar", "-tJf", str(txz)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert int(fields[2]) == len(listing)
    for entry in ("./bin/sh", "./etc/", "./usr/sbin/", "./var/", "./usr/libexec/lab/bin/python3", "./bin/freebsd-version"):
        assert entry in listing
    assert "./etc/rc.conf" not in listing
    # The lab host reaches the mirror through its default route, and its fetch trusts the lab's CA.
    status, out, err = lab_run(f"fetch -q -o - {base_url}/MANIFEST")
    assert status == 0, err
    assert out.strip() == manifest.strip()


def test_the_lab_hosts_fetch_refuses_a_mirror_certificate_it_does_not_trust(lab_host, lab_run, tmp_path):
    """As libfetch does: the peer is verified against the trust store, and one without the signer fails."""
    url = f"{mirror.url()}/{mirror.RELEASE_PATH}/MANIFEST"
    status, out, err = lab_run(f"SSL_CA_CERT_FILE=/dev/null SSL_CA_CERT_PATH=/nonexistent fetch -o /tmp/m {url}")
    assert status == 1 and out == ""
    assert err.splitlines()[-1] == f"fetch: {url}: Authentication error"
    assert "certificate verify failed" in err
    status, _, err = lab_run(f"SSL_NO_VERIFY_PEER=1 SSL_CA_CERT_FILE=/dev/null fetch -q -o /tmp/m {url}")
    assert status == 0, err


@pytest.fixture(scope="module")
def cycle_host():
    host.up(CYCLE_HOST, CYCLE_INDEX, log=lambda text: None)
    yield CYCLE_HOST
    host.destroy(CYCLE_HOST, log=lambda text: None)


def test_reboot_keeps_the_disk_and_drops_kernel_state_and_processes(cycle_host):
    status, _, err = host.ssh(cycle_host, "echo kept > /root/on-disk; touch /.kernel/marker; "
                                          "nohup sleep 600 >/dev/null 2>&1 & echo started")
    assert status == 0, err
    status, out, _ = host.ssh(cycle_host, "ps -ax -o command | grep -c '^sleep 600'")
    assert out.strip() == "1"
    before = host.init_pid(cycle_host)
    result = lab_cli("reboot", cycle_host)
    assert result.returncode == 0, result.stderr
    assert host.init_pid(cycle_host) not in (None, before)
    status, out, err = host.ssh(cycle_host, "cat /root/on-disk; ls -A /.kernel | grep -c marker; "
                                            "ps -ax -o command | grep -c '^sleep 600'")
    assert out.split() == ["kept", "0", "0"], err


def test_stop_then_up_boots_again_and_stop_is_idempotent(cycle_host):
    assert lab_cli("stop", cycle_host).returncode == 0
    assert not host.is_running(cycle_host)
    assert lab_cli("stop", cycle_host).returncode == 0
    status = lab_cli("status", cycle_host)
    assert status.returncode == 1 and f"{cycle_host}: stopped" in status.stdout
    assert lab_cli("up", cycle_host).returncode == 0
    status, out, _ = host.ssh(cycle_host, "cat /root/on-disk")
    assert (status, out.strip()) == (0, "kept")


def test_destroy_leaves_nothing_behind(cycle_host):
    pid = host._boot_pid(cycle_host)
    assert lab_cli("destroy", cycle_host).returncode == 0
    assert lab_cli("destroy", cycle_host).returncode == 0
    assert not process_alive(pid)
    assert paths.netns_name(cycle_host) not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                              text=True).stdout.split()
    assert subprocess.run(["ip", "link", "show", paths.veth_name(CYCLE_INDEX)], capture_output=True).returncode != 0
    assert not os.path.exists(paths.host_dir(cycle_host))
    with open("/proc/self/mountinfo") as handle:
        assert paths.host_dir(cycle_host) not in handle.read()


def test_pyinfra_reaches_the_lab_host_through_the_lab_inventory(lab_host):
    env = dict(os.environ, TORJAIL_LAB_HOST=lab_host.name)
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "pyinfra"), "-y", "lab/inventory.py",
                             "fact", "server.Os", "server.Hostname"], capture_output=True, text=True, cwd=REPO,
                            env=env, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f'"{lab_host.name}": "FreeBSD"' in output and f'"{lab_host.name}": "{lab_host.name}"' in output


def test_testinfra_reaches_the_lab_host_with_its_ssh_config(lab_host):
    import testinfra

    remote = testinfra.get_host(f"ssh://{lab_host.name}", ssh_config=lab_host.ssh_config)
    assert remote.system_info.type == "freebsd"
    assert remote.file("/etc/rc.conf").contains('sshd_enable="YES"')
    assert remote.file("/etc/rc.conf").user == "root" and remote.file("/etc/rc.conf").group == "wheel"


def test_sftp_uploads_files_as_pyinfra_does(lab_host, lab_run, tmp_path):
    local = tmp_path / "upload.txt"
    local.write_text("uploaded\n")
    result = subprocess.run(["sftp", "-F", lab_host.ssh_config, "-b", "-", lab_host.name],
                            input=f"put {local} /tmp/upload.txt\n", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert lab_run("cat /tmp/upload.txt")[1] == "uploaded\n"
