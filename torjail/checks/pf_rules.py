"""Whole-rule and whole-file checks pfctl makes after parsing a statement.

A grammatically correct rule can still be refused by pfctl: statements in
the wrong order, a port on a rule that is not tcp/udp, an ICMP type on a tcp
rule, an IPv6 address in an inet rule (pfctl expands the rule over every
address combination, drops those whose families differ and fails with "rule
expands to no valid combination" when nothing is left), keep state on a block
rule, a translation rule without ``->``.  These checks follow rule_consistent,
filter_consistent, rdr_consistent, expand_rule and check_rulestate in
FreeBSD 14's sbin/pfctl/parse.y and reuse their messages.

A few checks are torjail policy, stricter than pfctl, and say so in their
message: synproxy/modulate state on a rule that is not tcp (pfctl silently
downgrades it to keep state), nat/rdr without ``on <interface>`` (it would
translate on every interface, the jail's lo1 included), and an overload table
that no ``table`` statement defines (pfctl creates it silently).
"""

from __future__ import annotations

from itertools import product

from torjail.checks.pf_grammar import Option, Rule, TableDef
from torjail.checks.pf_values import ICMP, ICMP6, TCP, UDP, Host

# check_rulestate() levels; a statement may not come after a higher level.
OPTIONS, NORMALIZATION, TRANSLATION, FILTERING = 1, 3, 5, 6
ORDER_MESSAGE = ("Rules must be in order: options, ethernet, normalization, queueing, "
                 "translation, filtering")
# pfctl applies these options without checking the order.
_UNORDERED_OPTIONS = frozenset({"skip", "state-policy"})
_MAX_COMBINATIONS = 4096


def statement_level(statement: Rule | Option) -> int | None:
    """The order level of a statement, or None when pfctl does not check it."""
    if isinstance(statement, Option):
        return None if statement.name in _UNORDERED_OPTIONS else OPTIONS
    if statement.action == "scrub":
        return NORMALIZATION
    if statement.action in ("nat", "rdr"):
        return TRANSLATION
    return FILTERING  # pass, block, match (even with scrub options) and antispoof


def _family_name(family: int | None) -> str:
    return {4: "inet", 6: "inet6"}.get(family, "any")


def _decide_family(hosts: list[Host]) -> int | None:
    """decide_address_family(): the family all hosts share, else None."""
    families = {h.family for h in hosts}
    return families.pop() if len(families) == 1 else None


def _mismatch(rule_af: int | None, hosts: list[Host]) -> str:
    for host in hosts:
        if rule_af and host.family and host.family != rule_af:
            return (f" (address family mismatch: {host.text} is {_family_name(host.family)} "
                    f"but the rule is {_family_name(rule_af)})")
    return " (address family mismatch between source and destination)"


def _combinations(rule: Rule, af: int | None) -> tuple[list[tuple[int | None, int | None]], str]:
    """Address-family outcome of expand_rule(): one (protocol, family) per
    source/destination pair whose families agree, plus the reason when none do."""
    sources = rule.src or [None]
    destinations = rule.dst or [None]
    protocols = rule.protos or [None]
    if len(sources) * len(destinations) * len(protocols) > _MAX_COMBINATIONS:
        return [], " (too many combinations to expand)"
    kept = []
    for proto, src, dst in product(protocols, sources, destinations):
        src_af = src.family if src else None
        dst_af = dst.family if dst else None
        if (af and src_af and src_af != af) or (af and dst_af and dst_af != af) or (
                src_af and dst_af and src_af != dst_af):
            continue
        kept.append((proto, af or src_af or dst_af))
    return kept, "" if kept else _mismatch(af, rule.src + rule.dst)


def _state_errors(rule: Rule) -> list[str]:
    errors = []
    opts = rule.state_opts
    if rule.keep in ("keep", "modulate", "synproxy") and rule.action != "pass":
        errors.append("keep state is great, but only for pass rules")
    if "overload" in opts and "max-src-conn" not in opts and "max-src-conn-rate" not in opts:
        errors.append("'overload' requires 'max-src-conn' or 'max-src-conn-rate'")
    if opts.get("source-track") == "global":
        for name in ("max-src-nodes", "max-src-conn", "max-src-conn-rate"):
            if name in opts:
                errors.append(f"'{name}' is incompatible with 'source-track global'")
    if rule.keep == "synproxy" and (not rule.protos or any(p != TCP for p in rule.protos)):
        errors.append("synproxy state only applies to tcp: add 'proto tcp' "
                      "(pfctl would silently use keep state instead)")
    if rule.keep == "modulate" and any(p != TCP for p in rule.protos):
        errors.append("modulate state only applies to tcp (pfctl would silently use keep state instead)")
    return errors


def filter_errors(rule: Rule) -> list[str]:
    """Problems of a pass/block/match/antispoof rule, at its last line."""
    errors: list[str] = []
    if rule.flags and any(rule.flags) and rule.protos and TCP not in rule.protos:
        errors.append("flags only apply to tcp")
    errors += _state_errors(rule)
    af = rule.af or _decide_family(rule.src) or _decide_family(rule.dst)
    kept, reason = _combinations(rule, af)
    if not kept:
        return errors + ["rule expands to no valid combination" + reason]
    icmp_proto = {4: ICMP, 6: ICMP6}.get(rule.icmp_family)
    for proto, family in kept:
        if proto not in (TCP, UDP) and (rule.src_ports or rule.dst_ports):
            errors.append("port only applies to tcp/udp")
        if rule.icmp_types and proto not in (ICMP, ICMP6):
            errors.append("icmp-type/code only applies to icmp")
        if rule.icmp_types and not family:
            errors.append("must indicate address family with icmp-type/code")
        if (proto == ICMP and family == 6) or (proto == ICMP6 and family == 4):
            errors.append(f"proto {'icmp' if proto == ICMP else 'icmp6'} doesn't match "
                          f"address family {_family_name(family)}")
        if rule.block_policy == "return-rst" and proto != TCP:
            errors.append("return-rst can only be applied to TCP rules")
        if rule.icmp_types and proto != icmp_proto:
            errors.append("icmp-type mismatch")
    return list(dict.fromkeys(errors))


def scrub_errors(rule: Rule) -> list[str]:
    errors = []
    if rule.quick:
        errors.append("scrub rules do not support 'quick'")
    if "reassemble" in rule.scrub_opts and rule.direction:
        errors.append("reassemble tcp rules can not specify direction")
    kept, reason = _combinations(rule, rule.af)
    if not kept:
        errors.append("rule expands to no valid combination" + reason)
    return errors


def translation_errors(rule: Rule) -> list[str]:
    """nat and rdr: natrule, invalid_redirect and rdr_consistent."""
    errors: list[str] = []
    if not rule.interfaces:
        errors.append(f"{rule.action} rule without 'on <interface>': it would translate on every "
                      "interface (pfctl accepts it; torjail does not)")
    if rule.redirect is None:
        return errors + ["translation rule requires '-> address'"]
    af = rule.af
    if not af:
        af = next((h.family for h in rule.src + rule.dst if h.family), None)
    if not af:
        af = rule.redirect[0].family
    targets = [h for h in rule.redirect if not (af and h.family and h.family != af)]
    if not targets:
        return errors + ["no translation address with matching address family found."]
    if not af and any(h.kind not in ("table", "dynamic") for h in targets):
        errors.append("address family not given and translation address expands to multiple "
                      "address families")
    if len(targets) > 1:
        errors.append("only round-robin valid for multiple redirection addresses "
                      "(pool options are outside the torjail subset)")
    elif targets[0].kind == "table":
        errors.append("tables are only supported in round-robin redirection pools")
    kept, reason = _combinations(rule, af)
    if not kept:
        return errors + ["rule expands to no valid combination" + reason]
    if rule.action == "rdr":
        for proto, _family in kept:
            if proto not in (TCP, UDP):
                if rule.src_ports:
                    errors.append("src port only applies to tcp/udp")
                if rule.dst_ports:
                    errors.append("dst port only applies to tcp/udp")
                if rule.redirect_port:
                    errors.append("rpool port only applies to tcp/udp")
        if any(p.op not in ("=", ":") for p in rule.dst_ports):
            errors.append("invalid port operator for rdr destination port")
    return list(dict.fromkeys(errors))


def rule_errors(rule: Rule) -> list[str]:
    if rule.action == "scrub":
        return scrub_errors(rule)
    if rule.action in ("nat", "rdr"):
        return translation_errors(rule)
    return filter_errors(rule)


def overload_tables(rule: Rule) -> list[tuple[str, int]]:
    """Tables named by ``overload <t>`` in this rule, with their lines."""
    overload = rule.state_opts.get("overload")
    return [overload] if overload else []


def duplicate_table_error(table: TableDef, defined: dict[str, int]) -> str | None:
    if table.name in defined:
        return f"cannot define table {table.name}: already defined on line {defined[table.name]}"
    return None
