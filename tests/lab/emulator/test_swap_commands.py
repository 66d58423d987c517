"""swapon/swapoff of the lab as FreeBSD 14's sbin/swapon/swapon.c: what it refuses for a swap file, with its
messages and exit status, and the one form of fstab swap file it takes (plain md, never through GELI)."""

import os

import pytest

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and loop devices")]

ROOT_LINE = "/dev/vtbd0p2\t/\t\tufs\trw\t1\t1\n"
ELI_OPTIONS = "sw,ealgo=AES-XTS,keylen=256,sectorsize=4096"


@pytest.fixture
def root():
    from freebsd_root import PrivateRoot

    private = PrivateRoot()
    assert private.sh("dd if=/dev/zero of=/usr/swap0 bs=1048576 count=16 2>/dev/null").returncode == 0
    yield private
    private.sh("swapoff -a; mdconfig -d -u 99")
    private.close()


def fstab(root, *lines):
    root.write("/etc/fstab", ROOT_LINE + "".join(line + "\n" for line in lines))


@pytest.mark.parametrize("spec", ["md99.eli", "/dev/md99.eli", "/dev/md99"])
def test_swap_file_entry_needs_the_bare_md_name(root, spec):
    """swapon.c sends every fstab name starting with md and a digit to its md code, which takes the unit from
    the rest of the name: `.eli` (or a /dev/ prefix) is not a unit, and nothing is attached or swapped on."""
    fstab(root, f"{spec}\tnone\tswap\t{ELI_OPTIONS},file=/usr/swap0,late\t0\t0")
    result = root.run("swapon", "-aL")
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", f"swapon: Bad device unit: {spec}: Invalid argument\n")
    assert root.run("mdconfig", "-l").stdout == "\n"
    assert root.run("swapctl", "-l").stdout.count("\n") == 1


def test_md_entry_without_file_option(root):
    fstab(root, "md99\tnone\tswap\tsw\t0\t0")
    result = root.run("swapon", "-a")
    assert (result.returncode, result.stderr) == (1, "swapon: file option not found for md99\n")


def test_md_swap_file_is_attached_and_swapped_on_plain(root):
    """The documented form `md99 none swap sw,file=/usr/swap0,late`: swapon attaches the file as md99 and swaps
    on /dev/md99 itself, with no GELI provider: such a swap file is never encrypted."""
    fstab(root, "md99\tnone\tswap\tsw,file=/usr/swap0,late\t0\t0")
    skipped = root.run("swapon", "-a")
    assert (skipped.returncode, skipped.stdout) == (0, "")
    on = root.run("swapon", "-aL")
    assert (on.returncode, on.stdout, on.stderr) == (0, "swapon: adding /dev/md99 as swap device\n", "")
    assert root.run("mdconfig", "-l", "-v").stdout == "md99\tvnode\t   16M\t/usr/swap0\t\n"
    assert root.run("swapctl", "-l").stdout.splitlines()[1].split() == ["/dev/md99", "16384", "0"]
    assert root.run("geli", "status").stdout == ""
    again = root.run("swapon", "-aL")
    assert (again.returncode, again.stderr) == (1, "swapon: md99 on /usr/swap0: Device already in use\n")
    off = root.run("swapoff", "-a")
    assert (off.returncode, off.stdout) == (0, "swapoff: removing /dev/md99 as swap device\n")
    assert root.run("mdconfig", "-l").stdout == "\n"


def test_eli_on_an_md_unit_by_name_gets_geli_defaults(root):
    """Named on the command line (no fstab options), a .eli device gets geli's defaults; swapon prints nothing."""
    assert root.run("mdconfig", "-a", "-t", "vnode", "-f", "/usr/swap0", "-u", "99").returncode == 0
    on = root.run("swapon", "/dev/md99.eli")
    assert (on.returncode, on.stdout, on.stderr) == (0, "", "")
    listing = root.run("geli", "list", "md99.eli").stdout
    assert "EncryptionAlgorithm: AES-XTS" in listing and "KeyLength: 128" in listing
    busy = root.run("swapon", "/dev/md99.eli")
    assert (busy.returncode, busy.stderr) == (1, "swapon: /dev/md99.eli: Device already in use\n")
    assert root.run("swapoff", "/dev/md99.eli").returncode == 0
    assert root.run("geli", "status").stdout == ""


def test_a_regular_file_is_not_a_swap_device(root):
    result = root.run("swapon", "/usr/swap0")
    assert (result.returncode, result.stderr) == (1, "swapon: /usr/swap0: NSWAPDEV limit reached\n")


def test_all_is_silent_but_fails_for_devices_already_on_or_off(root):
    """swapon -a says nothing about an entry already swapping, but counts it in its exit status (swapon.c
    silences EBUSY only); swapoff -a likewise for a device that is there but not swapping. A one-time .eli
    provider is gone once swapped off, and swapoff -a then says so."""
    fstab(root, f"/dev/vtbd0p3.eli\tnone\tswap\t{ELI_OPTIONS}\t0\t0")
    assert root.run("swapon", "-a").returncode == 0
    again = root.run("swapon", "-a")
    assert (again.returncode, again.stdout, again.stderr) == (1, "", "")
    assert root.run("swapoff", "/dev/vtbd0p3.eli").returncode == 0
    gone = root.run("swapoff", "-a")
    assert (gone.returncode, gone.stderr) == (1, "swapoff: /dev/vtbd0p3.eli: No such file or directory\n")
    fstab(root, "/dev/vtbd0p3\tnone\tswap\tsw\t0\t0")
    off = root.run("swapoff", "-a")
    assert (off.returncode, off.stdout, off.stderr) == (1, "", "")


def test_entry_without_a_type_is_a_format_error(root):
    fstab(root, "/dev/vtbd0p3.eli\tnone\tswap\tlate\t0\t0")
    result = root.run("swapon", "-aL")
    assert (result.returncode, result.stderr) == (0, "fstab: /etc/fstab:2: Inappropriate file type or format\n")


def test_unknown_geli_option(root):
    fstab(root, "/dev/vtbd0p3.eli\tnone\tswap\tsw,ealgo=AES-XTS,keysize=256\t0\t0")
    result = root.run("swapon", "-a")
    assert (result.returncode, result.stderr) == (1, "swapon: Invalid option: keysize=256\n")
    assert root.run("geli", "status").stdout == ""


# --- the swap file's rc.d script (files/torjail_swapfile) -----------------------------------------------------

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SWAPFILE_RC = ('torjail_swapfile_enable="YES"\ntorjail_swapfile_path="/usr/swap0"\ntorjail_swapfile_unit="99"\n'
               'torjail_swapfile_geli_flags="-e AES-XTS -l 256 -s 4096"\n')


@pytest.fixture
def rc_root(root):
    root.write("/etc/defaults/rc.conf", 'rc_conf_files="/etc/rc.conf /etc/rc.conf.local"\n')
    root.write("/etc/rc.conf", SWAPFILE_RC)
    for source, target, mode in (("lab/freebsd/rc.subr", "/etc/rc.subr", 0o644),
                                 ("files/torjail_swapfile", "/usr/local/etc/rc.d/torjail_swapfile", 0o555)):
        with open(os.path.join(REPO, source)) as handle:
            root.write(target, handle.read(), mode)
    fstab(root)
    return root


def test_swap_file_script_swaps_on_the_file_through_a_one_time_key(rc_root):
    """What the boot (and the deploy) runs: md99 from the file, GELI one-time with the settings' cipher, swap on
    md99.eli; a second start changes nothing; stop lets the unit go."""
    started = rc_root.run("service", "torjail_swapfile", "start")
    assert (started.returncode, started.stdout) == (0, "Swap on /dev/md99.eli (/usr/swap0).\n"), started.stderr
    assert rc_root.run("swapctl", "-l").stdout.splitlines()[1].split()[0] == "/dev/md99.eli"
    listing = rc_root.run("geli", "list", "md99.eli").stdout
    assert "Flags: ONETIME, W-DETACH, W-OPEN, AUTORESIZE" in listing and "KeyLength: 256" in listing
    assert "Sectorsize: 4096" in listing
    again = rc_root.run("service", "torjail_swapfile", "start")
    assert (again.returncode, again.stdout) == (0, "")
    status = rc_root.run("service", "torjail_swapfile", "status")
    assert (status.returncode, status.stdout) == (0, "swap on /dev/md99.eli is on.\n")
    assert rc_root.run("service", "torjail_swapfile", "stop").returncode == 0
    assert rc_root.run("mdconfig", "-l").stdout == "\n"
    assert rc_root.run("geli", "status").stdout == ""


def test_swap_file_script_never_takes_an_md_unit_of_another_file(rc_root):
    assert rc_root.sh("truncate -s 16m /other.img && mdconfig -a -t vnode -f /other.img -u 99").returncode == 0
    refused = rc_root.run("service", "torjail_swapfile", "start")
    assert refused.returncode == 1
    assert "md99 is attached to another file than /usr/swap0: no swap on it." in refused.stderr
    assert rc_root.run("geli", "status").stdout == ""
    assert rc_root.run("swapctl", "-l").stdout.count("\n") == 1
