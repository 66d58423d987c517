"""mdconfig, geli, newfs, fsck, mount/umount, swap and halt in a private root: output formats and exit codes
as FreeBSD prints them, real loop devices and ext4 underneath, every loop released at the end."""

import json
import os
import re

import pytest

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and loop devices")]

FSTAB = ("/dev/vtbd0p2\t/\t\tufs\trw\t1\t1\n"
         "/dev/vtbd0p3.eli\tnone\t\tswap\tsw,ealgo=AES-XTS,keylen=256,sectorsize=4096\t0\t0\n")
PASS = "correct horse\n"


@pytest.fixture
def root():
    from freebsd_root import PrivateRoot

    private = PrivateRoot()
    private.write("/etc/fstab", FSTAB)
    yield private
    private.close()


def loops_of(root):
    loops = [unit["loop"] for unit in root.kernel_state("md").get("units", {}).values()]
    return loops + [eli["loop"] for eli in root.kernel_state("geli").get("providers", {}).values()
                    if eli.get("loop") is not None]


def image(root, size="256m", path="/var/jails/tor.img"):
    assert root.sh(f"mkdir -p {os.path.dirname(path)} && truncate -s {size} {path}").returncode == 0
    result = root.run("mdconfig", "-a", "-t", "vnode", "-f", path)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def encrypted(root, backup="none"):
    unit = image(root)
    result = root.run("geli", "init", "-B", backup, "-e", "AES-XTS", "-l", "256", "-s", "4096", "-J", "-", unit,
                      input=PASS)
    assert result.returncode == 0, result.stderr
    return unit


def test_mdconfig_attach_list_detach(root):
    assert image(root) == "md0"
    assert root.run("mdconfig", "-l").stdout == "md0 \n"
    assert root.run("mdconfig", "-l", "-v").stdout == "md0\tvnode\t  256M\t/var/jails/tor.img\t\n"
    assert root.run("mdconfig", "-l", "-f", "/var/jails/tor.img").stdout == "md0 \n"
    assert root.run("mdconfig", "-l", "-f", "/nonexistent.img").returncode == 1
    listing = root.run("ls", "-l", "/dev/md0").stdout
    assert listing.startswith("b"), listing
    again = root.run("mdconfig", "-a", "-t", "vnode", "-f", "/var/jails/tor.img", "-u", "0")
    assert (again.returncode, again.stderr) == (1, "mdconfig: ioctl(/dev/mdctl): File exists\n")
    assert root.run("mdconfig", "-d", "-u", "md0").returncode == 0
    assert root.run("mdconfig", "-l").stdout == "\n"
    assert not os.path.exists(root.path("/dev/md0"))
    missing = root.run("mdconfig", "-d", "-u", "0")
    assert (missing.returncode, missing.stderr) == (1, "mdconfig: ioctl(/dev/mdctl): No such file or directory\n")


def test_mdconfig_refuses_unknown_flag(root):
    result = root.run("mdconfig", "-Q")
    assert result.returncode == 1
    assert result.stderr.startswith("mdconfig: illegal option -- Q\nusage: mdconfig -a -t type")


def test_geli_init_writes_backup_unless_told_not_to(root):
    unit = image(root)
    result = root.run("geli", "init", "-e", "AES-XTS", "-l", "256", "-s", "4096", "-J", "-", unit, input=PASS)
    assert result.returncode == 0
    assert result.stdout == ("\nMetadata backup for provider md0 can be found in /var/backups/md0.eli\n"
                             "and can be restored with the following command:\n\n"
                             "\t# geli restore /var/backups/md0.eli md0\n\n")
    assert os.path.getsize(root.path("/var/backups/md0.eli")) == 512
    os.unlink(root.path("/var/backups/md0.eli"))
    quiet = root.run("geli", "init", "-B", "none", "-J", "-", unit, input=PASS)
    assert (quiet.returncode, quiet.stdout) == (0, "")
    assert not os.path.exists(root.path("/var/backups/md0.eli"))


def test_geli_metadata_holds_no_passphrase(root):
    encrypted(root)
    with open(root.path("/var/jails/tor.img"), "rb") as handle:
        handle.seek(-512, os.SEEK_END)
        sector = handle.read()
    assert sector.startswith(b"GEOM::ELI")
    assert b"correct horse" not in sector


def test_geli_status_needs_the_module(root):
    result = root.run("geli", "status")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "geli: Command 'status' not available; try 'load' first.\n"
    assert root.run("kldstat", "-q", "-m", "g_eli").returncode == 1


def test_geli_wrong_passphrase_changes_nothing(root):
    unit = encrypted(root)
    before = root.kernel_state("geli")
    result = root.run("geli", "attach", "-j", "-", unit, input="wrong\n")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "geli: Wrong key for md0."
    assert root.kernel_state("geli").get("providers", {}) == before.get("providers", {})
    assert not os.path.exists(root.path("/dev/md0.eli"))


def test_geli_attach_status_list_detach(root):
    unit = encrypted(root)
    assert root.run("geli", "attach", "-j", "-", unit, input=PASS + "ignored second line\n").returncode == 0
    assert root.run("kldstat", "-q", "-m", "g_eli").returncode == 0
    assert root.run("geli", "status").stdout == "   Name  Status  Components\nmd0.eli  ACTIVE  md0\n"
    listing = root.run("geli", "list", "md0.eli").stdout
    for line in ("Geom name: md0.eli", "State: ACTIVE", "EncryptionAlgorithm: AES-XTS", "KeyLength: 256",
                 "Version: 7", "UsedKey: 0", "Flags: AUTORESIZE", "1. Name: md0.eli",
                 "   Mediasize: 268431360 (256M)", "   Sectorsize: 4096", "   Mode: r0w0e0", "1. Name: md0",
                 "   Mediasize: 268435456 (256M)", "   Sectorsize: 512", "   Mode: r1w1e1"):
        assert line in listing.splitlines(), line
    assert listing.endswith("\n\n")
    again = root.run("geli", "attach", "-j", "-", unit, input=PASS)
    assert again.returncode == 1 and "md0" in again.stderr
    busy = root.run("mdconfig", "-d", "-u", "0")
    assert (busy.returncode, busy.stderr) == (1, "mdconfig: ioctl(/dev/mdctl): Device busy\n")
    assert root.run("geli", "detach", "md0").returncode == 0
    assert root.run("geli", "status").stdout == ""
    missing = root.run("geli", "detach", "md0")
    assert (missing.returncode, missing.stderr) == (1, "geli: No such device: md0.\n")


def test_geli_backup_kill_restore(root):
    unit = encrypted(root)
    assert root.run("geli", "backup", unit, "/root/md0.eli").returncode == 0
    assert root.run("geli", "kill", unit).returncode == 0
    dead = root.run("geli", "attach", "-j", "-", unit, input=PASS)
    assert dead.returncode == 1
    assert dead.stderr.splitlines()[0] == "geli: Cannot read metadata from md0: Invalid argument."
    assert root.run("geli", "restore", "/root/md0.eli", unit).returncode == 0
    assert root.run("geli", "attach", "-j", "-", unit, input=PASS).returncode == 0


def test_newfs_fsck_mount_umount(root):
    unit = encrypted(root)
    assert root.run("geli", "attach", "-j", "-", unit, input=PASS).returncode == 0
    newfs = root.run("newfs", "-U", "/dev/md0.eli")
    assert newfs.returncode == 0
    assert re.match(r"/dev/md0\.eli: 256\.0MB \(524280 sectors\) block size 32768, fragment size 4096\n",
                    newfs.stdout)
    assert "\twith soft updates\n" in newfs.stdout
    fsck = root.run("fsck", "-p", "-y", "-t", "ufs", "/dev/md0.eli")
    assert fsck.returncode == 0
    lines = fsck.stdout.splitlines()
    assert lines[0] == "/dev/md0.eli: FILE SYSTEM CLEAN; SKIPPING CHECKS"
    assert re.fullmatch(r"/dev/md0\.eli: clean, \d+ free \(\d+ frags, \d+ blocks, \d+\.\d% fragmentation\)",
                        lines[1])
    assert root.sh("mkdir -p /var/jails/tor && mount -t ufs /dev/md0.eli /var/jails/tor").returncode == 0
    assert root.sh("echo kept > /var/jails/tor/file").returncode == 0
    plain = root.run("mount").stdout.splitlines()
    assert plain[0] == "/dev/vtbd0p2 on / (ufs, local, soft-updates)"
    assert "/dev/md0.eli on /var/jails/tor (ufs, local, soft-updates)" in plain
    assert not any("loop" in line for line in plain)
    fstab_style = root.run("mount", "-p").stdout.splitlines()
    assert fstab_style[0] == "/dev/vtbd0p2\t\t/\t\t\tufs\trw\t\t1 1"
    assert "/dev/md0.eli\t\t/var/jails/tor\t\tufs\trw\t\t2 2" in fstab_style
    data = json.loads(root.run("mount", "--libxo", "json").stdout)
    assert {"node": "/dev/md0.eli", "mounted-on": "/var/jails/tor", "fstype": "ufs",
            "opts": ["local", "soft-updates"]} in data["mount"]["mounted"]
    assert "W-OPEN" in root.run("geli", "list").stdout
    busy = root.run("geli", "detach", "md0")
    assert (busy.returncode, busy.stderr) == (1, "geli: Cannot destroy device md0.eli (error=16).\n")
    assert root.run("umount", "/var/jails/tor").returncode == 0
    not_mounted = root.run("umount", "/var/jails/tor")
    assert (not_mounted.returncode, not_mounted.stderr) == (1, "umount: /var/jails/tor: not a file system root directory\n")
    assert root.run("geli", "detach", "md0").returncode == 0
    # The data survives a detach and a new attach (the image is the disk).
    assert root.run("geli", "attach", "-j", "-", unit, input=PASS).returncode == 0
    assert root.run("mount", "-t", "ufs", "/dev/md0.eli", "/var/jails/tor").returncode == 0
    assert root.read("/var/jails/tor/file") == "kept\n"


def test_geli_attach_d_detaches_after_the_last_writer(root):
    unit = encrypted(root)
    assert root.run("geli", "attach", "-d", "-j", "-", unit, input=PASS).returncode == 0
    assert "Flags: W-DETACH, AUTORESIZE" in root.run("geli", "list").stdout
    assert root.run("newfs", "-U", "/dev/md0.eli").returncode == 0
    assert root.run("geli", "status").stdout == ""  # newfs wrote and closed: detached
    assert root.run("geli", "attach", "-d", "-j", "-", unit, input=PASS).returncode == 0
    assert root.run("fsck", "-n", "-t", "ufs", "/dev/md0.eli").returncode == 0
    assert root.run("geli", "status").stdout != ""  # a reader does not detach it
    assert root.sh("mkdir -p /mnt/t && mount -t ufs /dev/md0.eli /mnt/t && umount /mnt/t").returncode == 0
    assert root.run("geli", "status").stdout == ""


def test_mount_refuses_missing_device_and_unknown_flag(root):
    missing = root.run("mount", "-t", "ufs", "/dev/md0.eli", "/mnt")
    assert (missing.returncode, missing.stderr) == (1, "mount: /dev/md0.eli: No such file or directory\n")
    flag = root.run("mount", "-Z")
    assert flag.returncode == 1 and flag.stderr.startswith("mount: illegal option -- Z\nusage: mount")


def test_fsck_without_filesystem(root):
    unit = image(root)
    result = root.run("fsck_ufs", "-p", f"/dev/{unit}")
    assert result.returncode == 8
    assert result.stdout == "/dev/md0: Cannot find file system superblock\n"


def test_encrypted_swap_from_fstab(root):
    assert root.run("swapinfo").stdout == "Device          1K-blocks     Used    Avail Capacity\n"
    on = root.run("swapon", "-a")
    assert (on.returncode, on.stdout) == (0, "swapon: adding /dev/vtbd0p3.eli as swap device\n")
    assert root.run("swapinfo").stdout.splitlines()[1] == "/dev/vtbd0p3.eli   2097152        0  2097152     0%"
    assert root.run("swapctl", "-l").stdout.splitlines()[0] == "Device:       1024-blocks     Used:"
    listing = root.run("geli", "list").stdout
    assert "Flags: ONETIME, W-DETACH, W-OPEN, AUTORESIZE" in listing
    assert "KeyLength: 256" in listing and "UsedKey" not in listing
    busy = root.run("swapon", "/dev/vtbd0p3.eli")
    assert (busy.returncode, busy.stderr) == (1, "swapon: /dev/vtbd0p3.eli: Device already in use\n")
    off = root.run("swapoff", "-a")
    assert (off.returncode, off.stdout) == (0, "swapoff: removing /dev/vtbd0p3.eli as swap device\n")
    assert root.run("geli", "status").stdout == ""
    assert root.run("swapinfo").stdout.count("\n") == 1


def test_halt_releases_every_loop(root):
    unit = encrypted(root)
    assert root.run("geli", "attach", "-j", "-", unit, input=PASS).returncode == 0
    assert root.run("newfs", "/dev/md0.eli").returncode == 0
    assert root.sh("mkdir -p /mnt/t && mount -t ufs /dev/md0.eli /mnt/t").returncode == 0
    loops = loops_of(root)
    assert len(loops) == 2
    assert root.run("/usr/libexec/lab/halt").returncode == 0
    for loop in loops:
        with open(f"/sys/block/loop{loop}/size") as handle:
            assert handle.read().strip() == "0", f"loop{loop} still attached"
    assert root.run("mdconfig", "-l").stdout == "\n"


def test_geli_list_shows_the_settings_an_image_was_made_with(root):
    """The deploy compares geli_cipher, geli_key_length and geli_sector_size with `geli list`: what the lab prints
    for a non-default image must read back as those values."""
    from torjail.freebsd.geli import GeliProviders

    unit = image(root)
    made = root.run("geli", "init", "-B", "none", "-e", "aes-cbc", "-l", "128", "-s", "1024", "-J", "-", unit,
                    input=PASS)
    assert made.returncode == 0, made.stderr
    assert root.run("geli", "attach", "-j", "-", unit, input=PASS).returncode == 0
    provider = GeliProviders().process(root.run("geli", "list", "md0.eli").stdout.splitlines())["md0.eli"]
    assert (provider["cipher"], provider["key_length"], provider["sector_size"]) == ("AES-CBC", 128, 1024)


DF_HEADER = re.compile(r"^Filesystem +1024-blocks +Used +Avail Capacity  Mounted on$")


def df_row(line):
    """(filesystem, 1024-blocks, used, avail, capacity, mounted on) of a `df -k` line."""
    match = re.fullmatch(r"(\S+) +(-?\d+) +(-?\d+) +(-?\d+) +(\d+)%    (.+)", line)
    assert match, line
    return match.group(1), *map(int, match.group(2, 3, 4, 5)), match.group(6)


def test_df_k_of_a_directory_names_its_filesystem_as_freebsd_does(root):
    """The deploy reads the Avail column of `df -k DIR` before it makes an image."""
    assert root.sh("mkdir -p /var/jails").returncode == 0
    result = root.run("df", "-k", "/var/jails")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert DF_HEADER.match(header), header
    device, blocks, used, avail, capacity, mounted_on = df_row(row)
    assert (device, mounted_on) == ("/dev/vtbd0p2", "/")
    assert blocks >= used >= 0 and avail > 0
    assert capacity == round(used / (used + avail) * 100)
    assert header.index("Mounted on") == len(row) - len(mounted_on), "the mount point sits under its header"


def test_df_of_an_image_filesystem_and_of_a_missing_path(root):
    unit = encrypted(root)
    assert root.run("geli", "attach", "-j", "-", unit, input=PASS).returncode == 0
    assert root.run("newfs", "-U", "/dev/md0.eli").returncode == 0
    assert root.sh("mkdir -p /var/jails/tor && mount -t ufs /dev/md0.eli /var/jails/tor").returncode == 0
    lines = root.run("df", "-k", "/var/jails/tor/").stdout.splitlines()
    assert df_row(lines[1])[0::5] == ("/dev/md0.eli", "/var/jails/tor")
    assert root.run("df").stdout.splitlines()[0].split()[1] == "512-blocks"
    missing = root.run("df", "-k", "/nowhere/at/all")
    assert (missing.returncode, missing.stderr) == (1, "df: /nowhere/at/all: No such file or directory\n")
    bad = root.run("df", "-x")
    assert bad.returncode == 64 and bad.stderr.startswith("df: illegal option -- x\nusage: df [-b | -g")
    assert root.run("umount", "/var/jails/tor").returncode == 0
