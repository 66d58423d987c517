"""PfRulesetLoaded: whether pf runs the rules and const tables of a pf.conf, from pfctl's own output."""

import pytest

from torjail.freebsd.pf import RUNNING_MARK, TABLES_MARK, PfRulesetLoaded

FILE = ["set block-policy drop", "set skip on { lo0 }",
        "table <admins> const { 198.51.100.0/24 2001:db8::/48 }", "table <bruteforce> persist",
        "scrub in all fragment reassemble",
        "nat on vtnet0 inet from 10.0.0.1 to any -> 203.0.113.10",
        "block drop log all",
        "pass in quick on vtnet0 proto tcp from <admins> to (vtnet0) port = ssh flags any keep state"]
RUNNING = ["nat on vtnet0 inet from 10.0.0.1 to any -> 203.0.113.10",
           "scrub in all fragment reassemble",
           "block drop log all",
           "pass in quick on vtnet0 proto tcp from <admins> to (vtnet0) port = ssh flags any keep state"]
TABLES = ["table <admins>", "   198.51.100.0/24", "   2001:db8::/48", "table <bruteforce>", "   192.0.2.66"]


def _loaded(file=FILE, running=RUNNING, tables=TABLES):
    return PfRulesetLoaded().process(file + [RUNNING_MARK] + running + [TABLES_MARK] + tables)


def test_the_running_ruleset_of_the_file_reads_loaded():
    """-s nat lists the translation rules apart from -s rules (scrub first, before nat in pf.conf)."""
    assert _loaded()
    assert not _loaded(running=RUNNING[:1] + RUNNING[2:][::-1] + RUNNING[1:2])  # filter rules in another order


@pytest.mark.parametrize("running", [
    ["nat on vtnet0 inet from 10.0.0.1 to any -> (vtnet0) round-robin"] + RUNNING[1:],
    RUNNING[:3],
    [],
], ids=["other nat", "rule missing", "nothing loaded"])
def test_other_running_rules_read_not_loaded(running):
    assert not _loaded(running=running)


def test_a_const_table_with_other_addresses_reads_not_loaded_but_bruteforce_is_pfs_to_fill():
    assert not _loaded(tables=["table <admins>", "   198.51.100.0/24", "table <bruteforce>"])
    assert _loaded(tables=TABLES[:3] + ["table <bruteforce>"])


def test_a_table_of_the_whole_world_compares_as_pfctl_prints_it():
    """pfctl -nv prints a table entry 0.0.0.0/0 or ::/0 as `any`; -T show prints the network."""
    file = [line.replace("{ 198.51.100.0/24 2001:db8::/48 }", "{ any any }") for line in FILE]
    assert _loaded(file=file, tables=["table <admins>", "   0.0.0.0/0", "   ::/0"])


def test_no_pf_or_a_file_pfctl_refuses_reads_not_loaded():
    assert PfRulesetLoaded().process([]) is False
    assert not _loaded(file=[])
