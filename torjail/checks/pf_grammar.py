"""The pf.conf grammar subset torjail generates, parsed with lark.

The grammar, in pf.lark beside this module, follows the productions of
FreeBSD 14's sbin/pfctl/parse.y and the GRAMMAR section of pf.conf(5),
restricted to the statements torjail writes: macros, tables, a few ``set``
options, scrub, nat, rdr, antispoof and pass/block/match rules with the
options pf.lark lists.  Anything else
(tags, queues, anchors, route-to, user/group, os, ...) fails to parse and is
reported as outside the subset rather than guessed at.

Each statement is parsed on its own from the tokens of pf_lexer, then turned
into a model (Rule, MacroDef, TableDef or Option) whose values have been
validated by pf_values.
Cross-statement and whole-rule checks live in pf_rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lark import Token, Tree
from lark.exceptions import UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer

from torjail.checks import parsers
from torjail.checks import pf_values as values
from torjail.checks.pf_lexer import KEYWORD_BY_TYPE, PUNCTUATION


class _TokenFeeder(Lexer):
    """pf_lexer already made the tokens; lark only needs them handed over."""

    def __init__(self, lexer_conf):
        pass

    def lex(self, data):
        yield from data


_PARSER = parsers.lalr("pf", (Path(__file__).parent / "pf.lark").read_text(), lexer=_TokenFeeder, start="statement")
# The token types some rule takes: a pfctl keyword outside them is outside the subset.
_GRAMMAR_TERMINALS = frozenset(symbol.name for rule in _PARSER.rules for symbol in rule.expansion if symbol.is_term)


class StatementError(Exception):
    """A problem in one statement, at a given line."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class Rule:
    """A scrub, nat, rdr, antispoof or pass/block/match rule."""

    action: str
    first_line: int
    last_line: int
    block_policy: str | None = None
    direction: str | None = None
    log: bool = False
    quick: bool = False
    interfaces: list[tuple[str, bool]] = field(default_factory=list)
    af: int | None = None
    protos: list[int] = field(default_factory=list)
    src: list[values.Host] = field(default_factory=list)
    src_ports: list[values.PortItem] = field(default_factory=list)
    dst: list[values.Host] = field(default_factory=list)
    dst_ports: list[values.PortItem] = field(default_factory=list)
    flags: tuple[int, int] | None = None
    icmp_family: int | None = None
    icmp_types: list[int] = field(default_factory=list)
    keep: str | None = None  # no, keep, modulate, synproxy
    state_opts: dict[str, object] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    scrub_opts: dict[str, object] = field(default_factory=dict)
    redirect: list[values.Host] | None = None
    redirect_port: values.PortItem | None = None


@dataclass
class MacroDef:
    name: str
    value: str
    line: int


@dataclass
class TableDef:
    name: str
    flags: set[str]
    addresses: list[values.Host]
    line: int


@dataclass
class Option:
    name: str  # reassemble, optimization, limit, loginterface, block-policy, state-policy, skip
    line: int


# -- syntax errors -------------------------------------------------------------

def _describe(token_type: str) -> str:
    if token_type in KEYWORD_BY_TYPE:
        return f"'{KEYWORD_BY_TYPE[token_type]}'"
    for char, name in PUNCTUATION.items():
        if name == token_type:
            return f"'{char}'"
    return {"STRING": "a word", "NUMBER": "a number", "ARROW": "'->'", "PORTBINARY": "'><' or '<>'",
            "$END": "end of line"}.get(token_type, token_type)


def _hint(previous: Token | None) -> str:
    if previous is None:
        return ""
    if previous.type == "ARROW":
        return ": '->' must be followed by the translation address"
    if previous.type == "MAX_SRC_CONN_RATE":
        return ": max-src-conn-rate takes CONNECTIONS/SECONDS, e.g. 5/30"
    if previous.type == "FLAGS":
        return ": flags takes SET/MASK, e.g. S/SA"
    return ""


def _syntax_error(tokens: list[Token], exc: UnexpectedInput, last_line: int) -> StatementError:
    token = getattr(exc, "token", None)
    index = next((i for i, t in enumerate(tokens) if t is token), len(tokens))
    previous = tokens[index - 1] if index > 0 else None
    if token is None or token.type == "$END":
        return StatementError(last_line, "syntax error: unexpected end of line" + _hint(previous))
    if token.type == "CHAR":
        return StatementError(token.line, f"syntax error: unexpected character '{token}'")
    if token.type in KEYWORD_BY_TYPE and token.type not in _GRAMMAR_TERMINALS:
        return StatementError(
            token.line, f"'{token}' is outside the pf.conf subset torjail generates and is not accepted"
        )
    if tokens[0].type == "STRING" and (len(tokens) < 2 or tokens[1].type != "EQ"):
        return StatementError(tokens[0].line, f"syntax error: unknown keyword '{tokens[0]}'")
    if index == 1 and token.type == "EQ" and previous is not None and previous.type in KEYWORD_BY_TYPE:
        return StatementError(token.line, f"macro name '{previous}' is a reserved word")
    candidates = getattr(exc, "expected", ())
    if getattr(exc, "interactive_parser", None) is not None:
        candidates = exc.interactive_parser.accepts()  # exact, unlike the merged LALR state
    expected = sorted({_describe(t) for t in candidates if t in _GRAMMAR_TERMINALS or t == "$END"})
    shown = ", ".join(expected[:10]) + (", ..." if len(expected) > 10 else "")
    shown_token = f"'{token}'" if token.type in ("STRING", "NUMBER") else _describe(token.type)
    message = f"syntax error: unexpected {shown_token}"
    if shown:
        message += f" (expected {shown})"
    return StatementError(token.line, message + _hint(previous))


def _check_balance(tokens: list[Token]) -> None:
    """Report a missing or stray brace/parenthesis before the parser does,
    with the line of the bracket that is left open."""
    pairs = {"RBRACE": ("LBRACE", "{", "}"), "RPAREN": ("LPAREN", "(", ")")}
    stack: list[Token] = []
    for token in tokens:
        if token.type in ("LBRACE", "LPAREN"):
            stack.append(token)
        elif token.type in pairs:
            opener, open_char, close_char = pairs[token.type]
            if not stack:
                raise StatementError(token.line, f"unbalanced '{close_char}': no matching '{open_char}'")
            if stack[-1].type != opener:
                other = "}" if stack[-1].type == "LBRACE" else ")"
                raise StatementError(
                    token.line, f"unbalanced '{close_char}': '{stack[-1]}' opened on line "
                    f"{stack[-1].line} must be closed with '{other}' first")
            stack.pop()
    if stack:
        token = stack[-1]
        close_char = "}" if token.type == "LBRACE" else ")"
        raise StatementError(token.line, f"unbalanced '{token}': missing closing '{close_char}'")


def parse_tokens(tokens: list[Token], last_line: int) -> Tree:
    _check_balance(tokens)
    try:
        return _PARSER.parse(tokens)
    except UnexpectedToken as exc:
        raise _syntax_error(tokens, exc, last_line) from None
    except UnexpectedInput as exc:
        raise _syntax_error(tokens, exc, last_line) from None


# -- tree to model -------------------------------------------------------------

def _tokens(tree: Tree) -> list[Token]:
    return [c for c in tree.children if isinstance(c, Token)]


def _subtrees(tree: Tree, name: str) -> list[Tree]:
    return [c for c in tree.children if isinstance(c, Tree) and c.data == name]


def _first(tree: Tree, name: str) -> Tree | None:
    found = _subtrees(tree, name)
    return found[0] if found else None


def _value(call, token: Token, *args, **kwargs):
    """Run a pf_values check, turning its ValueError into a located error."""
    try:
        return call(*args, **kwargs)
    except ValueError as exc:
        raise StatementError(token.line, str(exc)) from None


def _host(tree: Tree, negated: bool = False) -> values.Host:
    kind = tree.data
    tokens = _tokens(tree)
    if kind == "host_table":
        name = tokens[1]
        _value(values.parse_table_name, name, str(name))
        return values.Host("table", f"<{name}>", name.line, None, negated)
    if kind == "host_dynamic":
        return _value(values.parse_dynamic, tokens[1], str(tokens[1]), tokens[1].line, negated)
    if kind == "host_cidr":
        return _value(values.parse_address, tokens[0], str(tokens[0]), tokens[2].value, tokens[0].line, negated)
    return _value(values.parse_address, tokens[0], str(tokens[0]), None, tokens[0].line, negated)


def _xhost(tree: Tree) -> values.Host:
    negated = any(t.type == "BANG" for t in _tokens(tree))
    return _host(tree.children[-1], negated)


def _ipspec(tree: Tree) -> list[values.Host]:
    if tree.data == "ip_any":
        return []
    if tree.data == "xhost":
        return [_xhost(tree)]
    hosts: list[values.Host] = []
    for child in tree.children:
        if isinstance(child, Tree):
            hosts.extend(_ipspec(child))  # like pfctl, "any" inside a list adds nothing
    return hosts


def _port_word(tree: Tree, star_ok: bool = False) -> values.PortItem:
    token = tree.children[0]
    return _value(values.parse_port_word, token, str(token), token.line, star_ok=star_ok)


def _port_item(tree: Tree) -> values.PortItem:
    if tree.data == "port_plain":
        return _port_word(tree.children[0])
    if tree.data == "port_unary":
        op = "".join(str(t) for t in tree.children[0].children)
        item = _port_word(tree.children[1])
        if item.op != "=":
            raise StatementError(item.line, "':' cannot be used with an other port operator")
        return values.PortItem(op, item.low, item.low, item.line)
    low, binary, high = tree.children
    low_item, high_item = _port_word(low), _port_word(high)
    if low_item.op != "=" or high_item.op != "=":
        raise StatementError(binary.line, "':' cannot be used with an other port operator")
    if low_item.low >= high_item.low:
        raise StatementError(
            binary.line, f"port range {low_item.low} {binary} {high_item.low} is inverted or empty")
    return values.PortItem(str(binary), low_item.low, high_item.low, binary.line)


def _ipportspec(tree: Tree) -> tuple[list[values.Host], list[values.PortItem]]:
    hosts: list[values.Host] = []
    ports: list[values.PortItem] = []
    for child in tree.children:
        if isinstance(child, Tree) and child.data == "portspec":
            ports = [_port_item(item) for item in child.children if isinstance(item, Tree)]
        elif isinstance(child, Tree):
            hosts = _ipspec(child)
    return hosts, ports


def _interfaces(tree: Tree) -> list[tuple[str, bool]]:
    result = []
    for item in tree.find_data("if_item"):
        tokens = _tokens(item)
        name = tokens[-1]
        _value(values.check_interface, name, str(name))
        result.append((str(name), tokens[0].type == "BANG"))
    return result


def _fill_common(rule: Rule, tree: Tree) -> None:
    """Direction, log/quick, interfaces, address family, protocols, hosts."""
    for child in tree.children:
        if not isinstance(child, Tree):
            continue
        if child.data == "direction":
            rule.direction = str(child.children[0])
        elif child.data == "logquick":
            kinds = {t.type for t in _tokens(child)}
            rule.log, rule.quick = "LOG" in kinds, "QUICK" in kinds
        elif child.data == "on_if":
            rule.interfaces = _interfaces(child)
        elif child.data == "af":
            rule.af = 4 if child.children[0].type == "INET" else 6
        elif child.data == "proto":
            for item in _subtrees(child, "proto_item"):
                token = item.children[0]
                rule.protos.append(_value(values.parse_protocol, token, token.value))
        elif child.data == "fromto":
            for part in child.children:
                hosts, ports = _ipportspec(part.children[1])
                if part.data == "from_part":
                    rule.src, rule.src_ports = hosts, ports
                else:
                    rule.dst, rule.dst_ports = hosts, ports


def _scrub_opts(rule: Rule, trees: list[Tree]) -> None:
    for opt in trees:
        name = opt.data.replace("_", "-")
        token = opt.children[0]
        if name in rule.scrub_opts:
            raise StatementError(token.line, f"{name} cannot be respecified")
        value: object = True
        if name == "max-mss":
            value = opt.children[1].value
            if not 0 <= value <= 65535:
                raise StatementError(token.line, f"illegal {name} value {value}")
        elif name == "reassemble":
            if str(opt.children[1]).lower() != "tcp":
                raise StatementError(token.line, f"scrub reassemble supports only tcp, not '{opt.children[1]}'")
        rule.scrub_opts[name] = value


def _state_opts(rule: Rule, tree: Tree | None) -> None:
    if tree is None:
        return
    for opt in (c for c in tree.children if isinstance(c, Tree)):
        token = opt.children[0]
        name = opt.data.replace("_", "-")
        if name == "timeout":
            name = str(token)
            if "." not in name or name not in _STATE_TIMEOUTS:
                raise StatementError(token.line, f"illegal state timeout {name}")
        if name in ("if-bound", "floating"):
            name = "state-lock"
        if name in rule.state_opts:
            raise StatementError(token.line, f"state option '{name}' multiple definitions")
        numbers = [t.value for t in _tokens(opt) if t.type == "NUMBER"]
        if any(n < 0 for n in numbers):
            raise StatementError(token.line, "only positive values permitted")
        if name == "overload":
            table = opt.children[2]
            _value(values.parse_table_name, table, str(table))
            rule.state_opts[name] = (str(table), table.line)
        elif name == "max-src-conn-rate":
            if not all(numbers):
                raise StatementError(token.line, "'max-src-conn-rate' values must be > 0")
            rule.state_opts[name] = tuple(numbers)
        elif name == "source-track":
            rule.state_opts[name] = str(opt.children[1]) if len(opt.children) > 1 else "rule"
        elif numbers:
            if name in ("max-src-conn", "max-src-nodes", "max-src-states") and numbers[0] == 0:
                raise StatementError(token.line, f"'{name}' must be > 0")
            rule.state_opts[name] = numbers[0]
        else:
            rule.state_opts[name] = True


_STATE_TIMEOUTS = frozenset(
    "tcp.first tcp.opening tcp.established tcp.closing tcp.finwait tcp.closed tcp.tsdiff "
    "udp.first udp.single udp.multiple icmp.first icmp.error other.first other.single "
    "other.multiple adaptive.start adaptive.end src.track sctp.first sctp.opening "
    "sctp.established sctp.closing sctp.closed".split())


def _filter_opts(rule: Rule, trees: list[Tree]) -> None:
    seen: set[str] = set()
    for opt in trees:
        token = opt.children[0]
        kind = opt.data
        group = {"icmp6_type": "icmp_type", "flags_any": "flags", "no_state": "keep", "keep_state": "keep",
                 "modulate_state": "keep", "synproxy_state": "keep"}.get(kind, kind)
        if group in seen and group != "label":
            message = {"flags": "flags cannot be redefined", "icmp_type": "icmp-type cannot be redefined",
                       "keep": "modulate or keep cannot be redefined", "scrub": "scrub cannot be redefined"}
            raise StatementError(token.line, message[group])
        seen.add(group)
        if kind == "flags":
            set_word, mask_word = (t for t in _tokens(opt) if t.type == "STRING")
            set_bits = _value(values.parse_flags, set_word, str(set_word))
            mask_bits = _value(values.parse_flags, mask_word, str(mask_word))
            if set_bits & mask_bits != set_bits:
                raise StatementError(token.line, "flags always false")
            rule.flags = (set_bits, mask_bits)
        elif kind == "flags_any":
            rule.flags = (0, 0)
        elif kind in ("icmp_type", "icmp6_type"):
            family = 4 if kind == "icmp_type" else 6
            rule.icmp_family = family
            for item in opt.children[1].find_data("icmp_item"):
                word = item.children[0]
                rule.icmp_types.append(_value(values.parse_icmp_type, word, word.value, family))
                if len(item.children) == 3 and not 0 <= item.children[2].value <= 255:
                    raise StatementError(word.line, f"illegal icmp-code {item.children[2].value}")
        elif group == "keep":
            rule.keep = kind.split("_")[0]
            _state_opts(rule, _first(opt, "state_opts"))
        elif kind == "label":
            text = str(opt.children[1])
            if len(text) > 63:
                raise StatementError(token.line, "rule label too long (max 63 chars)")
            rule.labels.append(text)
            if len(rule.labels) > 5:
                raise StatementError(token.line, "label can only be used 5 times")
        elif kind == "scrub":
            _scrub_opts(rule, [c for c in opt.children if isinstance(c, Tree)])


def _redirect(rule: Rule, tree: Tree) -> None:
    hosts_tree = _first(tree, "redirect_hosts")
    rule.redirect = [_host(h) for h in hosts_tree.children if isinstance(h, Tree)]
    port = _first(tree, "port_word")
    if port is not None:
        rule.redirect_port = _port_word(port, star_ok=True)


# Rule parts _fill_common reads; what is left of a filter rule are its options.
_COMMON_PARTS = frozenset({"action", "direction", "logquick", "on_if", "af", "proto", "fromto", "fromto_all"})


def build(tree: Tree, first_line: int, last_line: int) -> Rule | MacroDef | TableDef | Option:
    """Turn a parsed statement into its model, validating every value."""
    node = tree.children[0]
    kind = node.data
    if kind == "macro_def":
        name = node.children[0]
        words = [str(w.children[0]) for w in _subtrees(node, "macro_word")]
        return MacroDef(str(name), " ".join(words), name.line)
    if kind == "table_def":
        name = node.children[2]
        _value(values.parse_table_name, name, str(name))
        flags: set[str] = set()
        addresses: list[values.Host] = []
        for opt in (c for c in node.children if isinstance(c, Tree)):
            if opt.data == "table_flag":
                flag = opt.children[0]
                if str(flag) not in ("persist", "const", "counters"):
                    raise StatementError(flag.line, f"invalid table option '{flag}'")
                flags.add(str(flag))
            else:
                for xhost in _subtrees(opt, "xhost"):
                    host = _xhost(xhost)
                    if host.kind == "table":
                        raise StatementError(host.line, "tables cannot contain tables")
                    if host.kind == "dynamic":
                        raise StatementError(host.line, "dynamic addresses are not permitted inside tables")
                    addresses.append(host)
        return TableDef(str(name), flags, addresses, name.line)
    if kind.startswith("set_"):
        return _option(node, kind[4:].replace("_", "-"))
    rule = Rule(action="", first_line=first_line, last_line=last_line)
    _fill_common(rule, node)
    if kind == "filter_rule":
        action = _first(node, "action")
        rule.action = str(action.children[0])
        policy = _first(action, "block_policy")
        rule.block_policy = str(policy.children[0]) if policy else None
        _filter_opts(rule, [c for c in node.children if isinstance(c, Tree) and c.data not in _COMMON_PARTS])
    elif kind == "scrub_rule":
        rule.action = "scrub"
        opts = _first(node, "scrub_opt_list")
        _scrub_opts(rule, [c for c in opts.children if isinstance(c, Tree)] if opts else [])
    elif kind in ("nat_rule", "rdr_rule"):
        rule.action = kind[:3]
        redirect = _first(node, "redirect")
        if redirect is not None:
            _redirect(rule, redirect)
    elif kind == "antispoof_rule":
        rule.action = "antispoof"
        for item in node.find_data("antispoof_if"):
            name = [t for t in _tokens(item) if t.type == "STRING"][0]
            _value(values.check_interface, name, str(name))
            rule.interfaces.append((str(name), False))
        _filter_opts(rule, _subtrees(node, "label"))
    return rule


def _option(node: Tree, name: str) -> Option:
    tokens = _tokens(node)
    line = tokens[0].line
    if name == "reassemble":
        word = _first(node, "yesno").children[0]
        if word.type == "STRING" and str(word) != "yes":
            raise StatementError(word.line, f"invalid value '{word}', expected 'yes' or 'no'")
    elif name == "optimization":
        word = tokens[2]
        if str(word) not in ("normal", "satellite", "high-latency", "conservative", "aggressive"):
            raise StatementError(word.line, f"unknown optimization {word}")
    elif name == "limit":
        for item in _subtrees(node, "limit_item"):
            key, number = item.children
            if number.value < 0:
                raise StatementError(number.line, "only positive values permitted")
            if str(key) not in ("states", "src-nodes", "frags", "table-entries"):
                raise StatementError(
                    key.line, f"unable to set limit {key} {number}: FreeBSD limits are "
                    "states, src-nodes, frags and table-entries")
    elif name == "loginterface":
        word = tokens[2]
        if str(word) != "none":
            _value(values.check_interface, word, str(word))
    elif name == "skip":
        for interface, negated in _interfaces(node):
            if negated:
                raise StatementError(line, "skip on ! <interface> is not supported")
    return Option(name, line)
