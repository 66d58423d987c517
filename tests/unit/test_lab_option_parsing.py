"""The option parsing of the lab's sysrc, local-unbound-setup and local-unbound launchers, host-free: the flags
each accepts, the ones it refuses with the message and exit status of FreeBSD's (sh getopts for the two shell
scripts of base), and where the launchers add FreeBSD's compiled-in paths."""

import pytest

from lab.freebsd.commands import local_unbound, local_unbound_setup, sysrc


@pytest.mark.parametrize("args, files, values, flags, operands", [
    (["-f", "/a /b", "-fc", "-nq", "name"], ["/a", "/b", "c"], {}, {"n", "q"}, ["name"]),
    (["-j", "tor", "-ai"], None, {"j": "tor"}, {"a", "i"}, []),
    (["-R/mnt", "-x", "x"], None, {"R": "/mnt"}, {"x"}, ["x"]),
    (["-R", "-n", "x"], None, {"R": "-n"}, set(), ["x"]),
    (["-j", "", "x"], None, {"j": ""}, set(), ["x"]),
    (["-f", "", "x"], [], {}, set(), ["x"]),
    (["-n", "--", "-x"], None, {}, {"n"}, ["-x"]),
    (["name", "-n"], None, {}, set(), ["name", "-n"]),
    (["-", "-n"], None, {}, set(), ["-", "-n"]),
    (["-aAcdDeFhinNlLqvxX"], None, {}, set("aAcdDeFhinNlLqvxX"), []),
])
def test_sysrc_takes_getopts_options_up_to_the_first_operand(args, files, values, flags, operands):
    """sysrc reads its options with sh getopts: -f adds files, -j/-R take a value, the rest are flags."""
    options = sysrc.parse_options(args)
    assert options["files"] == files
    assert {letter: options[letter] for letter in "jR" if letter in options} == values
    assert options["flags"] == flags
    assert options["operands"] == operands


@pytest.mark.parametrize("args, message", [
    (["-Z"], "Illegal option -Z"),
    (["-nZ", "x"], "Illegal option -Z"),
    (["--help"], "Illegal option --"),
    (["-:"], "Illegal option -:"),
    (["-f"], "No arg for -f option"),
    (["-n", "-j"], "No arg for -j option"),
])
def test_sysrc_refuses_a_bad_option_as_sh_getopts_does(args, message, capsys):
    """A refused option prints sh's getopts message and sysrc's usage, and sysrc exits 1 without reading rc.conf."""
    assert sysrc.main(["sysrc", *args]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"{message}\n{sysrc.USAGE}\n"


@pytest.mark.parametrize("args, values, operands", [
    ([], {}, []),
    (["-n", "-w", "/tmp/w", "192.0.2.1"], {"n": "", "w": "/tmp/w"}, ["192.0.2.1"]),
    (["-nt", "-c/x.conf", "none"], {"n": "", "t": "", "c": "/x.conf"}, ["none"]),
    (["-a", "-n"], {"a": "-n"}, []),
    (["-s", "", "--", "-n"], {"s": ""}, ["-n"]),
    (["192.0.2.1", "-n"], {}, ["192.0.2.1", "-n"]),
    (["-C", "c", "-f", "f", "-o", "o", "-p", "p", "-R", "R", "-r", "r", "-u", "u"],
     {"C": "c", "f": "f", "o": "o", "p": "p", "R": "R", "r": "r", "u": "u"}, []),
])
def test_local_unbound_setup_takes_getopts_options_up_to_the_first_operand(args, values, operands):
    """local-unbound-setup's options (getopts over its option string); the operands are the forwarders."""
    assert local_unbound_setup._getopts(args) == (values, operands)


@pytest.mark.parametrize("args, message", [
    (["-Z"], "Illegal option -Z"),
    (["-O", "/var/run/x.ctl"], "Illegal option -O"),
    (["-nZ"], "Illegal option -Z"),
    (["--help"], "Illegal option --"),
    (["-w"], "No arg for -w option"),
    (["-n", "-c"], "No arg for -c option"),
])
def test_local_unbound_setup_refuses_a_bad_option_as_sh_getopts_does(args, message, capsys):
    """-O is in the script's usage text but not in its getopts string: it is refused like any unknown letter,
    with getopts' message, the usage, exit status 1 and nothing written."""
    assert local_unbound_setup.main(["local-unbound-setup", *args]) == 1
    captured = capsys.readouterr()
    assert captured.out == "destination: \n"
    assert captured.err == f"{message}\n{local_unbound_setup.USAGE}\n"


CONF = local_unbound.CONFIG_FILE
KEY = local_unbound.ROOT_ANCHOR_FILE
CERT = local_unbound.ROOT_CERT_FILE


@pytest.mark.parametrize("name, args, expected", [
    ("local-unbound", [], ["-c", CONF]),
    ("local-unbound", ["-d"], ["-c", CONF, "-d"]),
    ("local-unbound", ["-c", "/x.conf"], ["-c", "/x.conf"]),
    ("local-unbound", ["-dc/x.conf"], ["-dc/x.conf"]),
    ("local-unbound", ["-w", "-c"], ["-c", CONF, "-w", "-c"]),
    ("local-unbound", ["-d", "--", "-c"], ["-c", CONF, "-d", "--", "-c"]),
    ("local-unbound-control", ["status"], ["-c", CONF, "status"]),
    ("local-unbound-control", ["-c", "/x.conf", "status"], ["-c", "/x.conf", "status"]),
    ("local-unbound-control", ["-s", "127.0.0.1", "reload"], ["-c", CONF, "-s", "127.0.0.1", "reload"]),
    ("local-unbound-checkconf", [], [CONF]),
    ("local-unbound-checkconf", ["-q"], ["-q", CONF]),
    ("local-unbound-checkconf", ["-o", "pidfile"], ["-o", "pidfile", CONF]),
    ("local-unbound-checkconf", ["/x.conf"], ["/x.conf"]),
    ("local-unbound-checkconf", ["-h"], ["-h"]),
    ("local-unbound-anchor", [], ["-a", KEY, "-c", CERT]),
    ("local-unbound-anchor", ["-v"], ["-a", KEY, "-c", CERT, "-v"]),
    ("local-unbound-anchor", ["-a", "/k"], ["-c", CERT, "-a", "/k"]),
    ("local-unbound-anchor", ["-c", "/p", "-a/k"], ["-c", "/p", "-a/k"]),
    ("local-unbound-anchor", ["-r", "-a"], ["-a", KEY, "-c", CERT, "-r", "-a"]),
])
def test_local_unbound_launchers_add_freebsds_paths_the_caller_left_out(name, args, expected):
    """FreeBSD's build has /var/unbound compiled in: the launcher passes those paths unless the caller gave one
    (an option's value or an operand after the options does not count as giving it)."""
    assert local_unbound.with_freebsd_defaults(name, args) == expected
