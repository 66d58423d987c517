"""The packet filter (pfctl(8)): whether pf is loaded and enabled, and whether it runs a given pf.conf.

Loading a ruleset safely (check, keep the last good one, roll back unless a fresh SSH login works)
belongs with the firewall task; this module gives it the state to start from.
"""

from __future__ import annotations

import ipaddress
import re
from shlex import quote

from pyinfra.api import FactBase


class PfStatus(FactBase):
    """
    Returns whether pf is loaded and enabled, from the first line of ``pfctl -s info``.

    .. code:: python

        {"loaded": True, "enabled": True, "debug": "Urgent"}

    Without pf.ko there is no /dev/pf and pfctl would fail: then ``loaded`` and ``enabled`` are False.
    """

    def command(self) -> str:
        return "if [ -e /dev/pf ]; then pfctl -s info; fi"

    def requires_command(self) -> str:
        return "pfctl"

    @staticmethod
    def default() -> dict:
        return {"loaded": False, "enabled": False, "debug": None}

    @staticmethod
    def reading_scopes():
        # pf's state: changed by loading pf.ko and by pfctl (the pf operations declare nothing: everything)
        return [("pf",)]

    def process(self, output: list[str]) -> dict:
        status = {"loaded": True, "enabled": False, "debug": None}
        for line in output:
            if line.startswith("Status:"):
                words = line.split()
                status["enabled"] = len(words) > 1 and words[1] == "Enabled"
                if "Debug:" in words and words.index("Debug:") + 1 < len(words):
                    status["debug"] = words[words.index("Debug:") + 1]
                break
        return status


RULE_WORDS = {"scrub", "match", "antispoof", "block", "pass", "nat", "no", "rdr", "binat", "anchor", "nat-anchor",
              "rdr-anchor", "binat-anchor"}
TRANSLATION_WORDS = {"nat", "no", "rdr", "binat", "nat-anchor", "rdr-anchor", "binat-anchor"}
RUNNING_MARK = "--- running"
TABLES_MARK = "--- tables"


class PfRulesetLoaded(FactBase):
    """
    Returns whether pf runs the ruleset of the file at ``path``: the rules and const tables as pfctl reads the
    file (``pfctl -n -v -f``, nothing loaded) are those of the running ruleset (``-s nat``, ``-s rules``, ``-T
    show``). A file placed but never loaded (a deploy stopped between the two) reads False, whatever the file's
    earlier copies say. Tables that are not const are pf's to fill (<bruteforce>) and are not compared.
    """

    def command(self, path: str) -> str:
        return (f"if [ -e /dev/pf ]; then pfctl -n -v -f {quote(path)} 2>/dev/null; echo {quote(RUNNING_MARK)}; "
                "pfctl -s nat 2>/dev/null; pfctl -s rules 2>/dev/null; "
                f"echo {quote(TABLES_MARK)}; "
                'for table in $(pfctl -s Tables 2>/dev/null); do echo "table <$table>"; '
                'pfctl -t "$table" -T show 2>/dev/null; done; fi')

    def requires_command(self, path: str) -> str:
        return "pfctl"

    @staticmethod
    def default() -> bool:
        return False

    def process(self, output: list[str]) -> bool:
        if RUNNING_MARK not in output or TABLES_MARK not in output:
            return False
        running_at, tables_at = output.index(RUNNING_MARK), output.index(TABLES_MARK)
        wanted, running = output[:running_at], output[running_at + 1:tables_at]
        if not _rule_lines(wanted) or _by_ruleset(wanted) != _by_ruleset(running):
            return False
        loaded = _shown_tables(output[tables_at + 1:])
        return all(loaded.get(name) == addresses for name, addresses in _const_tables(wanted).items())


def _rule_lines(lines: list[str]) -> list[str]:
    return [" ".join(line.split()) for line in lines if line.split() and line.split()[0] in RULE_WORDS]


def _by_ruleset(lines: list[str]) -> tuple[list[str], list[str]]:
    """(translation rules, filter rules) in order: pfctl lists them apart (-s nat, -s rules), -nv in file order."""
    rules = _rule_lines(lines)
    translation = [rule for rule in rules if rule.split()[0] in TRANSLATION_WORDS]
    return translation, [rule for rule in rules if rule.split()[0] not in TRANSLATION_WORDS]


def _address(text: str) -> str:
    """An address as a set member: pfctl prints a table's any (0.0.0.0/0, ::/0) as `any` in -nv."""
    negated, text = text.startswith("!"), text.lstrip("!")
    try:
        network = ipaddress.ip_network(text, strict=False)
        text = "any" if network.prefixlen == 0 else str(network)
    except ValueError:
        pass
    return ("!" if negated else "") + text


def _const_tables(lines: list[str]) -> dict[str, set[str]]:
    """{name: addresses} of the const tables defined in `pfctl -nv` output (`table <NAME> const { ... }`)."""
    tables = {}
    for line in lines:
        match = re.match(r"table <([^>]+)>((?: \w+)*)(?: \{(.*)\})?\s*$", line)
        if match and "const" in match.group(2).split():
            tables[match.group(1)] = {_address(word) for word in (match.group(3) or "").split()}
    return tables


def _shown_tables(lines: list[str]) -> dict[str, set[str]]:
    """{name: addresses} of the `table <NAME>` headings and `-T show` lines the fact's command prints."""
    tables, current = {}, None
    for line in lines:
        heading = re.fullmatch(r"table <([^>]+)>", line.strip())
        if heading:
            current = tables.setdefault(heading.group(1), set())
        elif current is not None and line.strip():
            current.add(_address(line.strip()))
    return tables
