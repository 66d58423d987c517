"""Tests for torjail.checks.pf, the strict pf.conf checker.

Good files live in pf_samples/; broken variants are made by changing one
spot of relay_full.conf, and the expected line is where that change lands,
so every case checks both the message and the line pfctl would report.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from torjail.__main__ import main
from torjail.checks.pf import PfError, check_pf_conf

SAMPLES = Path(__file__).parent / "pf_samples"
FULL = (SAMPLES / "relay_full.conf").read_text()


def _line_of(text: str, marker: str) -> int:
    """1-based line of the first occurrence of marker (independent of the checker)."""
    position = text.index(marker)
    return text.count("\n", 0, position) + 1


def _mutate(old: str, new: str, text: str = FULL) -> str:
    assert text.count(old) >= 1, f"sample no longer contains {old!r}"
    return text.replace(old, new, 1)


# -- accepted ----------------------------------------------------------------

@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.conf")))
def test_sample_files_are_accepted(sample):
    errors = check_pf_conf((SAMPLES / sample).read_text(), sample)
    assert errors == [], "\n".join(map(str, errors))


def _full_sample_sections():
    """The macro/table block and each later statement of relay_full.conf."""
    lines = FULL.splitlines()
    first_set = next(i for i, line in enumerate(lines) if line.startswith("set "))
    head = "\n".join(lines[:first_set]) + "\n"
    statements, current = [], ""
    for line in lines[first_set:]:
        if not line.strip() or line.startswith("#"):
            continue
        current += line + "\n"
        if not line.endswith("\\"):
            statements.append(current)
            current = ""
    return head, statements


_HEAD, _STATEMENTS = _full_sample_sections()


@pytest.mark.parametrize("statement", _STATEMENTS, ids=lambda s: s.split("\n")[0][:60])
def test_each_template_statement_is_accepted_on_its_own(statement):
    assert len(_STATEMENTS) == 24  # 7 options, scrub, nat, 2 rdr, antispoof, 12 filter rules
    errors = check_pf_conf(_HEAD + statement)
    assert errors == [], "\n".join(map(str, errors))


def test_macro_is_expanded_before_parsing_like_pfctl():
    # "$ext_if:0" is one word for pfctl: the macro text is re-read together
    # with what follows it.
    text = 'ext_if = "vtnet0"\npass in on $ext_if to ($ext_if:0)\n'
    assert check_pf_conf(text) == []
    errors = check_pf_conf('ext_if = "vtnet0"\npass in to $ext_if:network\n')
    assert [(e.line, "'vtnet0:network'" in e.message) for e in errors] == [(2, True)]


def test_nested_macro_and_macro_list():
    text = ('a = "10.0.0.1"\nb = "{" $a "10.0.0.2 }"\nports = "{ 9001 9030 }"\n'
            "pass in proto tcp from $b to any port $ports\n")
    assert check_pf_conf(text) == []


def test_comment_continues_over_a_backslash_newline_like_pfctl():
    # pfctl joins the next line into the comment, so the nat rule is not read
    # and no order error can come from it.
    text = "pass all\n# old rule \\\nnat on vtnet0 from 10.0.0.1 to any -> (vtnet0)\n"
    assert check_pf_conf(text) == []
    assert check_pf_conf(text.replace("\\\n", "\n")) != []


# -- rejected ----------------------------------------------------------------

BROKEN = [
    # (id, old text in relay_full.conf, replacement, marker for the line, message fragment)
    ("typo keyword", "pass quick on $jail_if", "pas quick on $jail_if", "pas quick",
     "unknown keyword 'pas'"),
    ("typo inside a rule", "block log all", "block log alll", "block log alll",
     "unexpected 'alll'"),
    ("reserved word as macro", 'jail_if = "lo1"', 'pass = "lo1"', 'pass = "lo1"',
     "reserved word"),
    ("undefined macro", "port $ssh_port flags", "port $sshport flags", "$sshport",
     "macro 'sshport' not defined"),
    ("macro used before definition", 'jail_ip = "10.0.0.1"\n', "", "nat on $ext_if inet from $jail_ip",
     "macro 'jail_ip' not defined"),
    ("nat after pass", "pass quick on $jail_if\n",
     "pass quick on $jail_if\nnat on $ext_if inet from $jail_ip to any -> ($ext_if)\n",
     "nat on $ext_if inet from $jail_ip to any -> ($ext_if)\npass in on $ext_if inet proto icmp",
     "Rules must be in order"),
    ("set after rdr", "antispoof quick", "set block-policy return\nantispoof quick",
     "set block-policy return", "Rules must be in order"),
    ("scrub after nat", "antispoof quick", "scrub in all\nantispoof quick", "scrub in all\nantispoof",
     "Rules must be in order"),
    # pfctl treats match (with or without scrub) as a filter rule: the nat
    # after it is the statement out of order.
    ("match scrub before nat", "scrub in all\n", "match in all scrub (no-df random-id max-mss 1440)\n",
     "nat on $ext_if inet from", "Rules must be in order"),
    ("bad IPv4", 'jail_ip = "10.0.0.1"', 'jail_ip = "10.0.0.256"', "nat on $ext_if inet from $jail_ip",
     "'10.0.0.256': not a valid IPv4 address"),
    ("short IPv4", 'ext_ip = "203.0.113.10"', 'ext_ip = "1.2.3"', "to $ext_ip port $relay_ports",
     "'1.2.3': not a valid IPv4 address"),
    ("bad IPv6", "2001:db8:1::/48", "2001:db8:1::g/48", "table <admins>", "not a valid IPv6 address"),
    ("bad prefix", "192.0.2.0/24", "192.0.2.0/33", "table <admins>", "invalid netmask '192.0.2.0/33'"),
    ("host name", "to $jail_ip port $relay_ports flags", "to jail.example.org port $relay_ports flags",
     "jail.example.org", "host names are not accepted"),
    ("port out of range", 'ssh_port = "22"', 'ssh_port = "70000"', "port $ssh_port flags",
     "illegal port value 70000"),
    ("port zero", "port 9001 -> $jail_ip port 9001", "port 0 -> $jail_ip port 9001", "port 0 ->",
     "illegal port value 0"),
    ("unknown service", "port { 53 123 }", "port { 53 nntpx }", "nntpx", "unknown port nntpx"),
    ("port range inverted", "port 1024:65535", "port 65535:1024", "65535:1024", "is inverted"),
    ("binary range inverted", "port 1024:65535", "port 2048 >< 1024", "2048 ><", "is inverted"),
    ("missing ) in keep state options", "overload <bruteforce> flush global)",
     "overload <bruteforce> flush global", "(max-src-conn 10", "missing closing ')'"),
    ("unbalanced brace", "port { 9001 9030 } keep state", "port { 9001 9030 keep state",
     "port { 9001 9030 keep", "missing closing '}'"),
    ("stray brace", "port { 53 123 }", "port 53 123 }", "port 53 123 }", "unbalanced '}'"),
    ("missing -> target", "port 9001 -> $jail_ip port 9001", "port 9001 ->", "port 9001 ->",
     "'->' must be followed by the translation address"),
    ("missing -> entirely", "to any -> ($ext_if)", "to any", "nat on", "translation rule requires '-> address'"),
    ("nat without interface", "nat on $ext_if inet", "nat inet", "nat inet", "without 'on <interface>'"),
    ("inet6 address in inet rule", "inet proto tcp to $jail_ip port $relay_ports",
     "inet proto tcp to $ext_ip6 port $relay_ports", "to $ext_ip6 port $relay_ports",
     "rule expands to no valid combination (address family mismatch"),
    ("inet6 target in inet rdr", "$relay_ports -> $jail_ip", "$relay_ports -> $ext_ip6",
     "-> $ext_ip6", "no translation address with matching address family found"),
    ("synproxy on udp", "inet proto tcp to $jail_ip port $relay_ports flags S/SA synproxy",
     "inet proto udp to $jail_ip port $relay_ports synproxy", "proto udp to $jail_ip",
     "synproxy state only applies to tcp"),
    ("flags on udp", "proto tcp to $jail_ip port $relay_ports flags S/SA",
     "proto udp to $jail_ip port $relay_ports flags S/SA", "proto udp to $jail_ip",
     "flags only apply to tcp"),
    ("bad flags letter", "from <admins> to ($ext_if) port $ssh_port flags S/SA",
     "from <admins> to ($ext_if) port $ssh_port flags S/SX", "flags S/SX", "bad flags SX"),
    ("flags always false", "from <admins> to ($ext_if) port $ssh_port flags S/SA",
     "from <admins> to ($ext_if) port $ssh_port flags SA/S", "flags SA/S", "flags always false"),
    ("max-src-conn-rate format", "max-src-conn-rate 5/30", "max-src-conn-rate 5:30", "5:30",
     "max-src-conn-rate takes CONNECTIONS/SECONDS"),
    ("icmp-type on tcp", "inet proto icmp icmp-type", "inet proto tcp icmp-type", "proto tcp icmp-type",
     "icmp-type/code only applies to icmp"),
    ("icmp proto in inet6 rule", "inet6 proto ipv6-icmp icmp6-type", "inet6 proto icmp icmp6-type",
     "inet6 proto icmp icmp6-type", "proto icmp doesn't match address family inet6"),
    ("unknown icmp type", "{ echoreq unreach }", "{ echoreq unreachable }", "icmp-type $icmp_types",
     "unknown icmp-type unreachable"),
    ("port without tcp/udp", "block return in quick on $ext_if proto tcp to port 9030",
     "block return in quick on $ext_if to port 9030", "to port 9030", "port only applies to tcp/udp"),
    ("keep state on block", "block log all", "block log all keep state", "block log all",
     "keep state is great, but only for pass rules"),
    ("unterminated quote", 'ext_if = "vtnet0"', 'ext_if = "vtnet0', 'ext_if =',
     "unterminated quoted string"),
    ("duplicate table", "table <bruteforce> persist\n", "table <bruteforce> persist\ntable <admins> persist\n",
     "table <admins> persist", "cannot define table admins: already defined on line"),
    ("undefined overload table", "table <bruteforce> persist\n", "", "overload <bruteforce>",
     "overload table <bruteforce> is not defined"),
    ("overload without limits", "(max-src-conn 10, max-src-conn-rate 5/30, overload",
     "(max 10, overload", "overload <bruteforce> flush", "'overload' requires 'max-src-conn'"),
    ("tag is outside the subset", "pass quick on $jail_if", "pass quick on $jail_if tag JAIL", "tag JAIL",
     "'tag' is outside the pf.conf subset"),
    ("user is outside the subset", "pass out quick on $ext_if keep state",
     "pass out quick on $ext_if user root keep state", "user root", "'user' is outside"),
    ("bad interface name", 'ext_if = "vtnet0"', 'ext_if = "VTNET0"', "set loginterface",
     "invalid interface name 'VTNET0'"),
    ("negative state limit", "max-src-conn 10,", "max-src-conn -10,", "max-src-conn -10",
     "only positive values permitted"),
    ("unknown set limit", "src-nodes 20000", "tables 20000", "set limit", "unable to set limit tables"),
    ("unknown table option", "table <bruteforce> persist", "table <bruteforce> persistent", "<bruteforce> persistent",
     "invalid table option 'persistent'"),
    ("table inside a table", "{ 192.0.2.0/24,", "{ <bruteforce>,", "table <admins>", "tables cannot contain tables"),
    ("scrub with quick", "scrub in all", "scrub in quick all", "scrub in", "scrub rules do not support 'quick'"),
    ("bad reassemble value", "set reassemble yes", "set reassemble maybe", "set reassemble",
     "expected 'yes' or 'no'"),
]


# Forms pfctl reads that neither the template writes nor operators commonly add (pf.lark says which).
OUTSIDE = [
    ("block return-icmp in on $ext_if all", "'return-icmp' is outside the pf.conf subset"),
    ("block return-icmp6 in on $ext_if all", "'return-icmp6' is outside the pf.conf subset"),
    ("pass in on $ext_if proto tcp keep state (sloppy)", "'sloppy' is outside the pf.conf subset"),
    ("scrub in on $ext_if all min-ttl 10", "'min-ttl' is outside the pf.conf subset"),
    ("pass in on $ext_if proto tcp flags /SA", "unexpected '/'"),
    ("antispoof for ($ext_if)", "unexpected '('"),
    ("set loginterface all", "unexpected 'all'"),
    ("nat pass on $ext_if from 10.0.0.1 to any -> ($ext_if)", "unexpected 'pass'"),
    ("nat log on $ext_if from 10.0.0.1 to any -> ($ext_if)", "unexpected 'log'"),
    ("rdr pass log on $ext_if proto tcp to port 9001 -> 10.0.0.1", "unexpected 'log'"),
]


@pytest.mark.parametrize("statement, fragment", OUTSIDE, ids=[c[0] for c in OUTSIDE])
def test_forms_outside_the_subset_are_refused(statement, fragment):
    errors = check_pf_conf(f'ext_if = "vtnet0"\n{statement}\n')
    assert [(e.line, fragment in e.message) for e in errors] == [(2, True)], [str(e) for e in errors]


@pytest.mark.parametrize("case", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_variant_is_rejected_at_the_right_line(case):
    _id, old, new, marker, fragment = case
    text = _mutate(old, new)
    errors = check_pf_conf(text, "pf.conf")
    expected_line = _line_of(text, marker)
    assert errors, f"accepted:\n{text}"
    matching = [e for e in errors if fragment in e.message]
    assert matching, f"no error containing {fragment!r}: {[str(e) for e in errors]}"
    assert matching[0].line == expected_line, [str(e) for e in errors]


def test_error_on_a_continued_rule_is_reported_on_its_last_line_like_pfctl():
    text = _mutate("(max-src-conn 10, max-src-conn-rate 5/30, overload",
                   "(max-src-conn 10, source-track global, overload")
    errors = check_pf_conf(text)
    assert [(e.line, e.message) for e in errors] == [
        (_line_of(text, "source-track global"), "'max-src-conn' is incompatible with 'source-track global'")]


def test_set_skip_and_state_policy_are_not_order_checked_like_pfctl():
    assert check_pf_conf("pass all\nset skip on { lo0 lo1 }\nset state-policy floating\n") == []
    errors = check_pf_conf("pass all\nset loginterface vtnet0\n")
    assert [(e.line, e.message) for e in errors] == [(2, "Rules must be in order: options, ethernet, "
                                                         "normalization, queueing, translation, filtering")]


def test_interface_names():
    for name in ("vtnet0", "igb1", "vtnet0.100", "egress"):
        assert check_pf_conf(f"pass out on {name}\n") == [], name
    for name in ("Vtnet0", "vtnet0.x", "a" * 16 + "0"):
        assert check_pf_conf(f"pass out on {name}\n") != [], name


def test_several_errors_are_all_reported_in_line_order():
    text = "pass all\npass in from 10.0.0.256\nset block-policy drop\npass in on $x\n"
    errors = check_pf_conf(text, "multi.conf")
    assert [(e.line, e.message.split(":")[0]) for e in errors] == [
        (2, "could not parse host specification '10.0.0.256'"),
        (3, "Rules must be in order"),
        (4, "macro 'x' not defined"),
    ]


def test_a_rejected_statement_does_not_move_the_order_like_pfctl():
    # pfctl drops a statement whose value is wrong before check_rulestate runs.
    errors = check_pf_conf("pass in from 10.0.0.256\nset block-policy drop\n")
    assert [e.line for e in errors] == [1]


def test_pferror_prints_like_pfctl():
    error = PfError("/etc/pf.conf", 7, "syntax error")
    assert (error.line, error.message, str(error)) == (7, "syntax error", "/etc/pf.conf:7: syntax error")
    assert str(check_pf_conf("pas all\n", "/tmp/x.conf")[0]) == "/tmp/x.conf:1: syntax error: unknown keyword 'pas'"


def test_random_damage_gives_errors_not_exceptions():
    """Seeded, bounded: 200 damaged copies of the samples must each come back
    as a list of PfError (most of them non-empty), never as a crash."""
    text = FULL + (SAMPLES / "forms.conf").read_text()
    rng = random.Random(20240601)
    pieces = list('{}()<>!=,/-:$"#\\\n .a0') + [" port ", " ->", " keep state", " inet6 "]
    rejected = 0
    for _ in range(200):
        chars = list(text)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(chars))
            if rng.random() < 0.5:
                del chars[position]
            else:
                chars.insert(position, rng.choice(pieces))
        errors = check_pf_conf("".join(chars))
        assert all(isinstance(e, PfError) and e.line >= 1 for e in errors)
        rejected += bool(errors)
    assert rejected > 100


# -- command line -------------------------------------------------------------

def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "torjail", "check", "--file", "pf.conf", *map(str, args)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_exit_codes(tmp_path):
    good = SAMPLES / "relay_full.conf"
    bad = tmp_path / "bad.conf"
    bad.write_text(_mutate("block log all", "block log alll"))

    ok = _run_cli(good)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")

    failed = _run_cli(good, bad)
    line = _line_of(bad.read_text(), "block log alll")
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"{bad}:{line}: syntax error: unexpected 'alll'")

    missing = _run_cli(tmp_path / "absent.conf")
    assert missing.returncode == 1 and "cannot read" in missing.stderr

    usage = _run_cli()
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_main_returns_status_without_exiting(tmp_path, capsys):
    bad = tmp_path / "bad.conf"
    bad.write_text("pass in on $nope\n")
    assert main(["check", "--file", "pf.conf", str(SAMPLES / "forms.conf")]) == 0
    assert main(["check", "--file", "pf.conf", str(bad)]) == 1
    assert f"{bad}:1: macro 'nope' not defined" in capsys.readouterr().err


def test_the_grammar_file_is_shipped_with_the_package():
    """pf_grammar loads pf.lark at import: an installed torjail without it could check no pf.conf at all."""
    import tomllib

    import torjail.checks

    package_data = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["torjail.checks"]
    grammar = Path(torjail.checks.__file__).with_name("pf.lark")
    assert grammar.is_file() and any(grammar.match(pattern) for pattern in package_data)
