"""The FreeBSD fact parsers read exactly what FreeBSD prints (../shared/FREEBSD-FORMATS.md).

Each fact is fed the documented output (and its noted variations); the facts whose commands are
plain POSIX shell (image probe, rc.conf, fstab) also run for real here, with FreeBSD-only tools
(stat -f, mdconfig) stood in for by small shims that accept only FreeBSD's syntax.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import textwrap

import pytest
from pyinfra.api import FactProcessError

from torjail.freebsd.fstab import FstabEntries
from torjail.freebsd.geli import GeliImage, GeliProviders, decode_metadata
from torjail.freebsd.jail import Jails
from torjail.freebsd.kld import KernelModules
from torjail.freebsd.md import MdDevices
from torjail.freebsd.pf import PfStatus
from torjail.freebsd.rc import RcConf
from torjail.freebsd.swap import SwapDevices
from torjail.freebsd.sysctl import Sysctls

GELI_LIST = """\
Geom name: md0.eli
State: ACTIVE
EncryptionAlgorithm: AES-XTS
KeyLength: 256
Crypto: accelerated software
Version: 7
UsedKey: 0
Flags: NONE
KeysAllocated: 1
KeysTotal: 1
Providers:
1. Name: md0.eli
   Mediasize: 2147479552 (2.0G)
   Sectorsize: 4096
   Mode: r1w1e1
Consumers:
1. Name: md0
   Mediasize: 2147483648 (2.0G)
   Sectorsize: 512
   Mode: r1w1e1

Geom name: ada0p3.eli
State: ACTIVE
EncryptionAlgorithm: AES-XTS
KeyLength: 256
Crypto: software
Version: 7
Flags: ONETIME, W-DETACH, W-OPEN, AUTORESIZE
KeysAllocated: 1
KeysTotal: 1
Providers:
1. Name: ada0p3.eli
   Mediasize: 2147483648 (2.0G)
   Sectorsize: 4096
   Mode: r1w1e0
Consumers:
1. Name: ada0p3
   Mediasize: 2147483648 (2.0G)
   Sectorsize: 512
   Stripesize: 0
   Stripeoffset: 1048576
   Mode: r1w1e1
"""


def lines(text: str) -> list[str]:
    return text.splitlines()


# --- md -------------------------------------------------------------------------------------------


def test_md_devices_reads_tab_separated_units_with_padded_sizes():
    """mdconfig -l -v: name, type, size right-aligned in 6, file, empty label after a tab."""
    output = ["md0\tvnode\t 2048M\t/var/jails/tor.img\t", "md1\tswap\t  512M\t-\t", "md2\tmalloc\t    8G\t\t"]
    assert MdDevices().process(output) == {
        "md0": {"type": "vnode", "size": "2048M", "file": "/var/jails/tor.img"},
        "md1": {"type": "swap", "size": "512M", "file": None},
        "md2": {"type": "malloc", "size": "8G", "file": None},
    }


def test_md_devices_nothing_configured_is_empty():
    """With no units mdconfig prints an empty line."""
    assert MdDevices().process([""]) == {}
    assert MdDevices.default() == {}
    assert MdDevices().requires_command() == "mdconfig"


def test_md_devices_keeps_spaces_inside_the_file_name():
    assert MdDevices().process(["md3\tvnode\t   64M\t/srv/my image.img\t"])["md3"]["file"] == "/srv/my image.img"


# --- geli list -----------------------------------------------------------------------------------


def test_geli_providers_reads_each_geom_block():
    """geli list: Key: Value blocks, Providers/Consumers sections, blank line between geoms."""
    providers = GeliProviders().process(lines(GELI_LIST))
    assert providers["md0.eli"] == {
        "state": "ACTIVE",
        "cipher": "AES-XTS",
        "key_length": 256,
        "sector_size": 4096,
        "flags": [],
        "consumer": "md0",
        "onetime": False,
        "version": 7,
    }
    swap = providers["ada0p3.eli"]
    assert swap["onetime"] is True
    assert swap["flags"] == ["ONETIME", "W-DETACH", "W-OPEN", "AUTORESIZE"]
    assert swap["consumer"] == "ada0p3"
    assert swap["sector_size"] == 4096  # the provider's, not the consumer's 512


def test_geli_providers_without_geom_eli_loaded_is_empty():
    """geom_eli not loaded: geli prints "Command 'list' not available" (folded into stdout)."""
    assert GeliProviders().process(["geli: Command 'list' not available; try 'load' first."]) == {}
    assert "2>&1" in GeliProviders().command()


def test_geli_providers_other_errors_fail_the_fact():
    with pytest.raises(FactProcessError):
        GeliProviders().process(["geli: Cannot get information about md9: No such device."])


# --- GELI metadata in an image -------------------------------------------------------------------


def geli_sector(version=7, flags=0, ealgo=22, keylen=256, provsize=2147483648, sectorsize=4096, corrupt=False):
    """struct g_eli_metadata as eli_metadata_encode() writes it (sys/geom/eli/g_eli.h), 512 bytes."""
    body = b"GEOM::ELI".ljust(16, b"\0")
    body += struct.pack("<IIHHHQIBi", version, flags, ealgo, keylen, 0, provsize, sectorsize, 1, 123456)
    body += bytes(range(64))  # salt
    body += bytes(384)  # encrypted master keys
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    if corrupt:
        digest = bytes(16)
    return (body + digest).ljust(512, b"\0")


def od_lines(data: bytes) -> list[str]:
    """What `od -An -v -t x1` prints: 16 bytes a line, each as a space and two hex digits."""
    return ["".join(f" {byte:02x}" for byte in data[i : i + 16]) for i in range(0, len(data), 16)]


def test_decode_metadata_reads_cipher_key_length_and_sector_size():
    metadata = decode_metadata(geli_sector())
    assert metadata["cipher"] == "AES-XTS"
    assert metadata["key_length"] == 256
    assert metadata["sector_size"] == 4096
    assert metadata["version"] == 7
    assert metadata["checksum_ok"] is True
    assert metadata["onetime"] is False


def test_decode_metadata_flags_and_other_cipher():
    metadata = decode_metadata(geli_sector(flags=0x1 | 0x8, ealgo=11, keylen=128))
    assert metadata["cipher"] == "AES-CBC"
    assert metadata["key_length"] == 128
    assert metadata["flags"] == ["ONETIME", "RW-DETACH"]
    assert metadata["onetime"] is True


def test_decode_metadata_checksum_mismatch_is_still_geli():
    """A damaged sector with the magic still means "GELI was here": never re-initialise it."""
    metadata = decode_metadata(geli_sector(corrupt=True))
    assert metadata is not None and metadata["checksum_ok"] is False


def test_decode_metadata_without_magic_is_none():
    assert decode_metadata(bytes(512)) is None
    assert decode_metadata(b"GEOM::ELI") is None


def test_geli_image_states_from_probe_output():
    fact = GeliImage()
    fact.command("/var/jails/tor.img")
    probe = ["size 2147483648", "sector", *od_lines(geli_sector()), "units", "md10\tvnode\t 2048M\t/var/jails/tor.img\t"]
    image = fact.process(probe)
    assert image["state"] == "geli"
    assert (image["size"], image["md_unit"]) == (2147483648, "md10")
    assert (image["cipher"], image["key_length"], image["sector_size"]) == ("AES-XTS", 256, 4096)

    blank = fact.process(["size 2147483648", "sector", *od_lines(bytes(512)), "units"])
    assert (blank["state"], blank["md_unit"]) == ("unknown", None)
    assert fact.process(["absent"])["state"] == "absent"
    assert fact.process(["other"])["state"] == "unknown"
    assert fact.process(["size 100", "units"])["state"] == "unknown"


def test_geli_image_unreadable_is_unknown_never_absent():
    """No output at all must not look like "no image" (that would invite geli init)."""
    assert GeliImage.default()["state"] == "unknown"
    assert GeliImage().process([])["state"] == "unknown"


def test_geli_image_md_unit_is_the_one_backing_that_path():
    fact = GeliImage()
    fact.command("/var/jails/tor.img")
    probe = ["size 4096", "sector", *od_lines(bytes(512)), "units", "md3\tvnode\t    4K\t/other.img\t"]
    assert fact.process(probe)["md_unit"] is None


@pytest.fixture
def freebsd_shims(tmp_path):
    """A PATH directory where stat and mdconfig accept only FreeBSD's syntax."""
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "stat").write_text(
        textwrap.dedent(
            """\
            #!/bin/sh
            # FreeBSD stat: only -f FORMAT is supported here; GNU's -c is refused as on FreeBSD
            if [ "$1" = "-f" ] && [ "$2" = "%z" ] && [ $# -eq 3 ]; then exec /usr/bin/stat -L -c %s -- "$3"; fi
            echo "stat: illegal option -- ${1#-}" >&2; exit 1
            """,
        ),
    )
    (shims / "mdconfig").write_text(
        textwrap.dedent(
            """\
            #!/bin/sh
            [ "$*" = "-l -v" ] || { echo "mdconfig: unexpected arguments: $*" >&2; exit 1; }
            [ -n "$MD_LIST" ] && printf '%b\\n' "$MD_LIST"
            exit 0
            """,
        ),
    )
    for shim in shims.iterdir():
        shim.chmod(0o755)
    return shims


def run_fact(fact, shims, env=None, **arguments):
    command = str(fact.command(**arguments))
    environment = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", **(env or {})}
    result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, env=environment, timeout=30)
    assert result.returncode == 0, result.stderr
    return fact.process(result.stdout.splitlines())


def test_geli_image_probe_runs_in_posix_sh_and_finds_metadata(tmp_path, freebsd_shims):
    """The probe's sh, dd and od really read the last 512-byte sector of a file."""
    image = tmp_path / "tor.img"
    with open(image, "wb") as handle:
        handle.truncate(1024 * 1024 - 512)
        handle.seek(0, os.SEEK_END)
        handle.write(geli_sector(provsize=1024 * 1024))
    env = {"MD_LIST": f"md10\\tvnode\\t    1M\\t{image}\\t"}
    found = run_fact(GeliImage(), freebsd_shims, env=env, path=str(image))
    assert found["state"] == "geli"
    assert found["size"] == 1024 * 1024
    assert found["md_unit"] == "md10"
    assert (found["cipher"], found["key_length"], found["sector_size"]) == ("AES-XTS", 256, 4096)
    assert found["provider_size"] == 1024 * 1024


def test_geli_image_probe_blank_missing_and_directory(tmp_path, freebsd_shims):
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(8192))
    assert run_fact(GeliImage(), freebsd_shims, path=str(blank))["state"] == "unknown"
    assert run_fact(GeliImage(), freebsd_shims, path=str(tmp_path / "none.img"))["state"] == "absent"
    assert run_fact(GeliImage(), freebsd_shims, path=str(tmp_path))["state"] == "unknown"
    # metadata anywhere but the last sector does not count
    early = tmp_path / "early.img"
    early.write_bytes(geli_sector() + bytes(4096))
    assert run_fact(GeliImage(), freebsd_shims, path=str(early))["state"] == "unknown"


def test_geli_image_path_with_spaces_is_quoted(tmp_path, freebsd_shims):
    image = tmp_path / "my image.img"
    image.write_bytes(bytes(512) + geli_sector())
    assert run_fact(GeliImage(), freebsd_shims, path=str(image))["state"] == "geli"


# --- jls -----------------------------------------------------------------------------------------


JLS_LINE = (
    "devfs_ruleset=4 enforce_statfs=2 host=new ip4=new ip6=disable jid=1 name=tor "
    "osrelease=14.3-RELEASE parent=0 path=/var/jails/tor nopersist securelevel=3 "
    "allow.nomount allow.raw_sockets children.cur=0 children.max=0 host.domainname=\"\" "
    "host.hostname=\"tor relay\" ip4.addr=10.0.0.1,10.0.0.2 ip4.saddrsel ip6.addr=\"\""
)


def test_jails_reads_name_value_pairs_booleans_numbers_and_lists():
    """jls -nq: name=value pairs, booleans as name/noname, values with spaces quoted."""
    jails = Jails().process([JLS_LINE, "jid=2 name=other path=/var/jails/other persist securelevel=-1"])
    tor = jails["tor"]
    assert tor["jid"] == 1
    assert tor["securelevel"] == 3
    assert tor["path"] == "/var/jails/tor"
    assert tor["ip4.addr"] == ["10.0.0.1", "10.0.0.2"]
    assert tor["ip6.addr"] == []
    assert tor["host.hostname"] == "tor relay"
    assert tor["host.domainname"] == ""
    assert tor["persist"] is False
    assert tor["allow.mount"] is False
    assert tor["allow.raw_sockets"] is True
    assert tor["ip4"] == "new"
    assert jails["other"]["persist"] is True
    assert jails["other"]["securelevel"] == -1


def test_jails_none_running():
    assert Jails().process([]) == {}
    assert Jails.default() == {}
    assert Jails().command() == "jls -nq"


# --- swap, fstab ---------------------------------------------------------------------------------


def test_swap_devices_from_swapctl_l():
    output = ["Device:       1024-blocks     Used:", "/dev/ada0p3.eli   2097152         0", "/dev/md99        1048576      2048"]
    assert SwapDevices().process(output) == [
        {"device": "/dev/ada0p3.eli", "blocks": 2097152, "used": 0},
        {"device": "/dev/md99", "blocks": 1048576, "used": 2048},
    ]


def test_swap_devices_tolerates_swapinfo_header_and_total():
    output = [
        "Device          1K-blocks     Used    Avail Capacity",
        "/dev/ada0p3.eli   2097152        0  2097152     0%",
        "/dev/ada1p3       2097152       10  2097142     0%",
        "Total             4194304       10  4194294     0%",
    ]
    assert [device["device"] for device in SwapDevices().process(output)] == ["/dev/ada0p3.eli", "/dev/ada1p3"]
    assert SwapDevices().process(["Device:       1024-blocks     Used:"]) == []


FSTAB = """\
# Device\t\tMountpoint\tFStype\tOptions\t\tDump\tPass#
/dev/ada0p2\t/\t\tufs\trw\t1\t1
/dev/ada0p3.eli\tnone\tswap\tsw,ealgo=AES-XTS,keylen=256,sectorsize=4096\t0\t0
proc            /proc           procfs  rw      0       0   # the process filesystem
fdesc /dev/fd fdescfs rw

/dev/ada1p1 /mnt/with\\040space ufs rw,noauto 2 2
"""


def test_fstab_entries_in_order_without_comments():
    entries = FstabEntries().process(lines(FSTAB))
    assert [entry["device"] for entry in entries] == ["/dev/ada0p2", "/dev/ada0p3.eli", "proc", "fdesc", "/dev/ada1p1"]
    assert entries[1] == {
        "device": "/dev/ada0p3.eli",
        "mountpoint": "none",
        "fstype": "swap",
        "options": "sw,ealgo=AES-XTS,keylen=256,sectorsize=4096",
        "dump": 0,
        "pass": 0,
    }
    assert entries[0]["dump"] == 1 and entries[0]["pass"] == 1
    assert entries[3]["dump"] == 0 and entries[3]["pass"] == 0
    assert entries[4]["mountpoint"] == "/mnt/with space"


def test_fstab_entries_runs_and_a_missing_file_is_empty(tmp_path, freebsd_shims):
    fstab = tmp_path / "fstab"
    fstab.write_text(FSTAB)
    assert len(run_fact(FstabEntries(), freebsd_shims, path=str(fstab))) == 5
    assert run_fact(FstabEntries(), freebsd_shims, path=str(tmp_path / "missing")) == []


# --- rc.conf -------------------------------------------------------------------------------------


RC_CONF = """\
hostname="relay1"
ifconfig_vtnet0="inet 203.0.113.10 netmask 255.255.255.0"
sshd_enable="YES"
# pf_enable="YES"
dumpdev='AUTO'
zfs_enable=YES   # set by the installer
jail_list="one
two"
empty=""
sshd_enable="NO"
if [ -f /etc/rc.conf.extra ]; then . /etc/rc.conf.extra; fi
"""


def test_rc_conf_parses_assignments_quotes_comments_last_wins():
    values = RcConf().process(lines(RC_CONF))
    assert values == {
        "hostname": "relay1",
        "ifconfig_vtnet0": "inet 203.0.113.10 netmask 255.255.255.0",
        "sshd_enable": "NO",
        "dumpdev": "AUTO",
        "zfs_enable": "YES",
        "jail_list": "one\ntwo",
        "empty": "",
    }


def test_loader_conf_dotted_names():
    values = RcConf().process(['kern.geom.label.disk_ident.enable="0"', 'geom_eli_load="YES"', "pf_load=YES"])
    assert values == {"kern.geom.label.disk_ident.enable": "0", "geom_eli_load": "YES", "pf_load": "YES"}


def test_rc_conf_command_reads_the_file_itself_and_inside_a_jail():
    assert str(RcConf().command()) == "[ ! -f /etc/rc.conf ] || cat /etc/rc.conf"
    assert str(RcConf().command(path="/boot/loader.conf")) == "[ ! -f /boot/loader.conf ] || cat /boot/loader.conf"
    assert str(RcConf().command(jail="tor")) == "jexec tor sh -c '[ ! -f /etc/rc.conf ] || cat /etc/rc.conf'"


def test_rc_conf_runs_and_a_missing_file_is_empty(tmp_path, freebsd_shims):
    rc_conf = tmp_path / "rc.conf"
    rc_conf.write_text(RC_CONF)
    assert run_fact(RcConf(), freebsd_shims, path=str(rc_conf))["sshd_enable"] == "NO"
    assert run_fact(RcConf(), freebsd_shims, path=str(tmp_path / "none.conf")) == {}


# --- kldstat, pfctl, sysctl ----------------------------------------------------------------------


def test_kernel_modules_from_kldstat():
    output = [
        "Id Refs Address                Size Name",
        " 1   23 0xffffffff80200000  1f3e2d8 kernel",
        " 2    1 0xffffffff82a1c000    5a8b8 geom_eli.ko",
        " 3    1 0xffffffff82a77000    7c4d0 pf.ko",
    ]
    assert KernelModules().process(output) == {"kernel", "geom_eli", "pf"}
    assert KernelModules.default() == set()


def test_pf_status_enabled_disabled_and_not_loaded():
    enabled = ["Status: Enabled for 0 days 00:05:12           Debug: Urgent", "", "State Table   Total   Rate"]
    assert PfStatus().process(enabled) == {"loaded": True, "enabled": True, "debug": "Urgent"}
    disabled = ["Status: Disabled                              Debug: Urgent"]
    assert PfStatus().process(disabled)["enabled"] is False
    assert PfStatus.default() == {"loaded": False, "enabled": False, "debug": None}
    assert "/dev/pf" in PfStatus().command()


def test_sysctls_one_command_for_all_names():
    command = str(Sysctls().command(names=["kern.ipc.somaxconn", "net.inet.ip.random_id"]))
    assert command == "sysctl -i -e kern.ipc.somaxconn net.inet.ip.random_id"
    output = ["kern.ipc.somaxconn=4096", "net.inet.ip.random_id=1", "kern.ostype=FreeBSD"]
    assert Sysctls().process(output) == {
        "kern.ipc.somaxconn": "4096",
        "net.inet.ip.random_id": "1",
        "kern.ostype": "FreeBSD",
    }


def test_signing_cert_expiry_reads_the_hours_after_the_header():
    """od prints the four expiry octets of tor's cert (hours since the epoch, big-endian); no file: None."""
    from torjail.procedures.torkeys import KeyFiles, SigningCertExpiry

    assert SigningCertExpiry().process(["    0   7 159 238"]) == 499694 * 3600
    assert SigningCertExpiry().process([]) is None
    assert KeyFiles().process(["secret_id_key", "ed25519_signing_cert", ""]) == {"secret_id_key",
                                                                                  "ed25519_signing_cert"}
    assert "od -An -tu1 -j34 -N4 /k/ed25519_signing_cert" in SigningCertExpiry().command("/k/ed25519_signing_cert")
