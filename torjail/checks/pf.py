"""Strict checker for the pf.conf files torjail generates.

The relay host loads /etc/pf.conf with pfctl, which only exists on FreeBSD;
a broken ruleset found there means a failed deploy or, worse, a firewall
that locks the operator out.  This checker lets tests and ``python -m torjail
check`` refuse such a file on any machine.  It accepts exactly the pf.conf
subset torjail writes (see pf_grammar) and rejects everything else, either
with pfctl's own message (``FILE:LINE: message``, as ``pfctl -nf`` prints)
or with a message saying the construct is outside the subset.

How a file is read, in the order pfctl does it:
  pf_lexer    tokens, comments, continuations, quotes, ``$macro`` expansion
  pf_grammar  one statement at a time with lark, values checked by pf_values
  pf_rules    per-rule consistency and statement order

Usage: ``check_pf_conf(text, filename)`` returns a list of PfError (empty
means valid); ``python -m torjail check --file pf.conf FILE...`` prints them
and exits 1 if any file has an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torjail.checks import pf_rules
from torjail.checks.pf_grammar import MacroDef, Option, Rule, StatementError, TableDef, build, parse_tokens
from torjail.checks.pf_lexer import PfLexer, Statement

_MACRO_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True)
class PfError:
    """One problem, printed like pfctl: ``pf.conf:12: message``."""

    filename: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}: {self.message}"


class _FileChecker:
    """State carried from one statement to the next: macros, tables, order."""

    def __init__(self, filename: str):
        self.filename = filename
        self.errors: list[PfError] = []
        self.macros: dict[str, str] = {}
        self.tables: dict[str, int] = {}
        self.overloads: list[tuple[str, int]] = []
        self.level = 0

    def error(self, line: int, message: str) -> None:
        self.errors.append(PfError(self.filename, line, message))

    def statement(self, statement: Statement) -> None:
        if statement.error is not None:
            self.error(*statement.error)
            return
        try:
            tree = parse_tokens(statement.tokens, statement.last_line)
            model = build(tree, statement.first_line, statement.last_line)
        except StatementError as exc:
            self.error(exc.line, exc.message)
            return
        if isinstance(model, MacroDef):
            self._define_macro(model)
        elif isinstance(model, TableDef):
            self._define_table(model)
        else:
            self._check_rule_or_option(model, statement.last_line)

    def _define_macro(self, macro: MacroDef) -> None:
        if not _MACRO_NAME.fullmatch(macro.name):
            self.error(macro.line, f"invalid macro name '{macro.name}': use letters, digits and "
                                   "underscores, starting with a letter")
        elif "$" in macro.value:
            self.error(macro.line, f"macro '{macro.name}' contains '$': macros are not expanded "
                                   "inside quotes, write $other outside the quotes")
        else:
            self.macros[macro.name] = macro.value

    def _define_table(self, table: TableDef) -> None:
        duplicate = pf_rules.duplicate_table_error(table, self.tables)
        if duplicate:
            self.error(table.line, duplicate)
        else:
            self.tables[table.name] = table.line

    def _check_rule_or_option(self, model: Rule | Option, last_line: int) -> None:
        level = pf_rules.statement_level(model)
        if level is not None:
            if level < self.level:
                self.error(last_line, pf_rules.ORDER_MESSAGE)
                return
            self.level = level
        if isinstance(model, Rule):
            for message in pf_rules.rule_errors(model):
                self.error(last_line, message)
            self.overloads += pf_rules.overload_tables(model)

    def finish(self) -> list[PfError]:
        for name, line in self.overloads:
            if name not in self.tables:
                self.error(line, f"overload table <{name}> is not defined: add 'table <{name}> persist' "
                                 "(pfctl would create it silently; torjail requires the definition)")
        return sorted(self.errors, key=lambda e: e.line)


def check_pf_conf(text: str, filename: str = "pf.conf") -> list[PfError]:
    """All problems found in ``text``; an empty list means the file is valid."""
    checker = _FileChecker(filename)
    for statement in PfLexer(text, checker.macros).statements():
        checker.statement(statement)
    return checker.finish()
