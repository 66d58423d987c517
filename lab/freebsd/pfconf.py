"""The lab's own reader of pf.conf(5): the grammar subset a relay host uses, checked like pfctl(8) checks it.

parse(text, filename) returns a Ruleset: options, tables, translation rules (nat/rdr) and filter rules
(scrub, match, antispoof, pass, block), each rule already expanded the way pfctl expands it (one rule per
interface/protocol/address/port of its lists, macros replaced, `self` and antispoof resolved against the
interface addresses), as plain JSON-ready dicts so the loaded ruleset can be kept in kernel state and later
translated for real enforcement. format_rule() prints a rule in pfctl's normalised `-s rules` form.
Errors raise PfSyntaxError carrying pfctl's `FILE:LINE: MESSAGE` lines.
"""

import ipaddress
import itertools
import re
import socket

from lab.freebsd import netif

# Statement order pfctl enforces (parse.y check_rulestate); macros and tables may appear anywhere.
STATE_OPTION, STATE_SCRUB, STATE_NAT, STATE_FILTER = range(4)
ORDER_MESSAGE = "Rules must be in order: options, ethernet, normalization, queueing, translation, filtering"

SET_OPTIONS = {
    "skip", "block-policy", "loginterface", "debug", "reassemble", "optimization", "state-policy", "limit",
    "timeout", "ruleset-optimization", "require-order", "hostid", "fingerprints", "state-defaults", "syncookies",
    "keepcounters",
}
DEBUG_LEVELS = {"none": "None", "urgent": "Urgent", "misc": "Misc", "loud": "Loud"}
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58, "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58}
TCP_FLAGS = "FSRPAUEW"
# icmp(4) and icmp6(4) type names pfctl knows (pfctl_parser.c icmp_type / icmp6_type).
ICMP_TYPES = {
    "echorep": 0, "unreach": 3, "squench": 4, "redir": 5, "althost": 6, "echoreq": 8, "routeradv": 9,
    "routersol": 10, "timex": 11, "paramprob": 12, "timereq": 13, "timerep": 14, "inforeq": 15, "inforep": 16,
    "maskreq": 17, "maskrep": 18, "trace": 30, "dataconv": 31, "mobredir": 32, "ipv6-where": 33,
    "ipv6-here": 34, "mobregreq": 35, "mobregrep": 36, "skip": 39, "photuris": 40,
}
ICMP6_TYPES = {
    "unreach": 1, "toobig": 2, "timex": 3, "paramprob": 4, "echoreq": 128, "echorep": 129, "groupqry": 130,
    "listqry": 130, "grouprep": 131, "listenrep": 131, "groupterm": 132, "listendone": 132, "routersol": 133,
    "routeradv": 134, "neighbrsol": 135, "neighbradv": 136, "redir": 137, "routrrenum": 138, "wrureq": 139,
    "wrurep": 140, "fqdnreq": 139, "fqdnrep": 140, "niqry": 139, "nirep": 140, "mtraceresp": 200, "mtrace": 201,
}
PORT_OPERATORS = ("!=", "<=", ">=", "<", ">", "=")
RANGE_OPERATORS = ("><", "<>")


class PfSyntaxError(Exception):
    """Parse failure: `errors` holds the `FILE:LINE: MESSAGE` lines pfctl prints before giving up."""

    def __init__(self, errors):
        super().__init__("\n".join(errors))
        self.errors = errors


class _StatementError(Exception):
    def __init__(self, message, line=None):
        super().__init__(message)
        self.line = line


# --------------------------------------------------------------------------------------------- tokens

class Token:
    __slots__ = ("kind", "value", "line")

    def __init__(self, kind, value, line):
        self.kind = kind  # "word", "string" (quoted), "punct", "newline"
        self.value = value
        self.line = line

    def __repr__(self):
        return f"Token({self.kind}, {self.value!r}, {self.line})"


_PUNCT = ("!=", "<=", ">=", "><", "<>", "->", "{", "}", "(", ")", ",", "!", "<", ">", "=", "/")
_WORD = re.compile(r"[A-Za-z0-9_.:\-*+@%]+")


def _lex(text, macros, line_base=1):
    """Split pf.conf text into tokens, expanding `$macro` outside quotes as pfctl's lexer does."""
    tokens = []
    i, line, length = 0, line_base, len(text)
    while i < length:
        char = text[i]
        if char == "\\" and text[i + 1:i + 2] == "\n":
            i += 2
            line += 1
        elif char == "\n":
            tokens.append(Token("newline", "\n", line))
            line += 1
            i += 1
        elif char in " \t\r":
            i += 1
        elif char == "#":
            while i < length and text[i] != "\n":
                i += 1
        elif char in "\"'":
            end = text.find(char, i + 1)
            if end < 0 or "\n" in text[i + 1:end]:
                raise _StatementError("unterminated quote", line)
            tokens.append(Token("string", text[i + 1:end], line))
            i = end + 1
        elif char == "$":
            match = re.compile(r"[A-Za-z0-9_]+").match(text, i + 1)
            if not match:
                raise _StatementError("syntax error", line)
            name = match.group(0)
            if name not in macros:
                raise _StatementError(f"macro '{name}' not defined", line)
            for token in _lex(macros[name], macros, line):
                if token.kind != "newline":
                    token.line = line
                    tokens.append(token)
            i = match.end()
        else:
            for punct in _PUNCT:
                if text.startswith(punct, i):
                    tokens.append(Token("punct", punct, line))
                    i += len(punct)
                    break
            else:
                match = _WORD.match(text, i)
                if not match:
                    raise _StatementError("syntax error", line)
                tokens.append(Token("word", match.group(0), line))
                i = match.end()
    return tokens


def _statements(text):
    """Yield (line, raw statement text) pairs; lines joined by a trailing backslash or open braces stay together."""
    lines = text.split("\n")
    start, depth, buffer = None, 0, []
    for number, raw in enumerate(lines, start=1):
        code = _strip_comment(raw)
        if start is None:
            if not code.strip():
                continue
            start = number
        buffer.append(raw)
        depth += code.count("{") - code.count("}")
        if code.rstrip().endswith("\\") or depth > 0:
            continue
        yield start, "\n".join(buffer)
        start, depth, buffer = None, 0, []
    if buffer:
        yield start, "\n".join(buffer)


def _strip_comment(line):
    quoted = None
    for index, char in enumerate(line):
        if quoted:
            if char == quoted:
                quoted = None
        elif char in "\"'":
            quoted = char
        elif char == "#":
            return line[:index]
    return line


class _Cursor:
    """A statement's tokens with the small look-ahead the grammar needs."""

    def __init__(self, tokens, line):
        self.tokens = [t for t in tokens if t.kind != "newline"]
        self.pos = 0
        self.line = line

    def peek(self, offset=0):
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def at(self, *values):
        token = self.peek()
        return token is not None and token.value in values

    def next(self):
        token = self.peek()
        if token is None:
            raise _StatementError("syntax error", self.line)
        self.pos += 1
        return token

    def accept(self, *values):
        if self.at(*values):
            return self.next()
        return None

    def expect(self, *values):
        token = self.next()
        if token.value not in values:
            raise _StatementError("syntax error", token.line)
        return token

    def word(self):
        token = self.next()
        if token.kind not in ("word", "string"):
            raise _StatementError("syntax error", token.line)
        return token.value

    def number(self):
        token = self.next()
        if not token.value.isdigit():
            raise _StatementError("syntax error", token.line)
        return int(token.value)

    def done(self):
        return self.pos >= len(self.tokens)

    def error_line(self):
        token = self.peek()
        return token.line if token else self.line


# --------------------------------------------------------------------------------------------- parser

class Ruleset(dict):
    """A parsed pf.conf: dict with options, tables, nat (nat and rdr rules) and rules (scrub and filter)."""


def parse(text, filename="/etc/pf.conf", defines=None):
    """Parse pf.conf text; raise PfSyntaxError with pfctl's messages when it is not valid."""
    parser = _Parser(filename, dict(defines or {}))
    return parser.parse(text)


class _Parser:
    def __init__(self, filename, macros):
        self.filename = filename
        self.macros = macros
        self.state = STATE_OPTION
        self.errors = []
        self.result = Ruleset(options={}, tables={}, nat=[], rules=[])
        self.referenced_tables = set()
        self._interfaces = None
        self.end_line = None

    def parse(self, text):
        for line, statement in _statements(text):
            try:
                self._statement(line, statement)
            except _StatementError as error:
                self.errors.append(f"{self.filename}:{error.line or line}: {error}")
        if self.errors:
            raise PfSyntaxError(self.errors)
        for name in sorted(self.referenced_tables):
            self.result["tables"].setdefault(name, {"flags": [], "addresses": [], "line": None})
        return self.result

    # -- dispatch

    def _statement(self, line, statement):
        definition = re.match(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*)$", statement, re.S)
        if definition and definition.group(1) not in ("pass", "block", "match"):
            self._macro(line, definition.group(1), definition.group(2))
            return
        cursor = _Cursor(_lex(statement, self.macros, line), line)
        if cursor.done():
            return
        # Checks made once a whole rule is read (pfctl's rule_consistent) report the statement's last line.
        self.end_line = cursor.tokens[-1].line
        keyword = cursor.peek().value
        handlers = {
            "table": self._table, "set": self._set, "scrub": self._scrub, "antispoof": self._antispoof,
            "nat": self._nat, "rdr": self._rdr, "pass": self._filter, "block": self._filter, "match": self._filter,
        }
        handler = handlers.get(keyword)
        if handler is None:
            raise _StatementError("syntax error", cursor.peek().line)
        handler(cursor)
        if not cursor.done():
            raise _StatementError("syntax error", cursor.error_line())

    def _macro(self, line, name, value_text):
        tokens = [t for t in _lex(value_text, self.macros, line) if t.kind != "newline"]
        if not tokens:
            raise _StatementError("syntax error", line)
        self.macros[name] = " ".join(_token_text(t) for t in tokens)

    def _order(self, state, line):
        if self.state > state:
            raise _StatementError(ORDER_MESSAGE, line)
        self.state = state

    # -- tables and options

    def _table(self, cursor):
        start = cursor.next()
        cursor.expect("<")
        name = cursor.word()
        cursor.expect(">")
        flags, addresses = [], []
        while not cursor.done():
            token = cursor.next()
            if token.value in ("persist", "const", "counters"):
                flags.append(token.value)
            elif token.value == "{":
                while not cursor.accept("}"):
                    if cursor.accept(","):
                        continue
                    negated = bool(cursor.accept("!"))
                    for host in self._host(cursor):
                        addresses.append(("!" if negated else "") + _address_text(host))
            elif token.value == "file":
                path = cursor.word()
                addresses.extend(_table_file(path, token.line))
            else:
                raise _StatementError("syntax error", token.line)
        if name in self.result["tables"] and self.result["tables"][name].get("line"):
            raise _StatementError(f"table <{name}> redefined", start.line)
        self.result["tables"][name] = {"flags": flags, "addresses": addresses, "line": start.line}

    def _set(self, cursor):
        start = cursor.next()
        self._order(STATE_OPTION, start.line)
        option = cursor.word()
        if option not in SET_OPTIONS:
            raise _StatementError("syntax error", start.line)
        options = self.result["options"]
        if option == "skip":
            cursor.expect("on")
            options["skip"] = self._name_list(cursor)
        elif option == "block-policy":
            options["block-policy"] = cursor.expect("drop", "return").value
        elif option == "debug":
            level = cursor.word()
            if level not in DEBUG_LEVELS:
                raise _StatementError("syntax error", start.line)
            options["debug"] = level
        elif option == "loginterface":
            options["loginterface"] = cursor.word()
        elif option == "reassemble":
            options["reassemble"] = cursor.expect("yes", "no").value
            if cursor.accept("no-df"):
                options["reassemble"] += " no-df"
        else:
            values = []
            while not cursor.done():
                values.append(_token_text(cursor.next()))
            if not values:
                raise _StatementError("syntax error", start.line)
            options[option] = " ".join(values)

    def _name_list(self, cursor):
        if cursor.accept("{"):
            names = []
            while not cursor.accept("}"):
                if not cursor.accept(","):
                    names.append(cursor.word())
            return names
        return [cursor.word()]

    # -- rules

    def _scrub(self, cursor):
        start = cursor.next()
        self._order(STATE_SCRUB, start.line)
        rule = _new_rule("scrub", start.line)
        self._rule_head(cursor, rule)
        while not cursor.done():
            token = cursor.next()
            if token.value == "fragment":
                cursor.expect("reassemble")
            elif not _scrub_option(cursor, token, rule["scrub"]):
                raise _StatementError("syntax error", token.line)
        self._emit(rule, self.result["rules"])

    def _antispoof(self, cursor):
        start = cursor.next()
        self._order(STATE_FILTER, start.line)
        log = bool(cursor.accept("log"))
        quick = bool(cursor.accept("quick"))
        cursor.expect("for")
        names = self._name_list(cursor)
        family = cursor.accept("inet", "inet6")
        for name in names:
            link = netif.find(name)
            if link is None:
                continue
            for address in netif.addresses(link):
                if family and _family(address) != family.value or address.ip.is_link_local:
                    continue
                networks = [(address.network, [name], True)]
                if not netif.is_loopback(name):
                    networks.append((ipaddress.ip_network(address.ip), None, False))
                for network, interfaces, negated in networks:
                    rule = _new_rule("block", start.line)
                    rule.update(direction="in", log=log, quick=quick, af=_family(address),
                                block_policy=self._block_policy(), interfaces=interfaces,
                                interface_not=negated, src_hosts=[_net_address(network)])
                    self._emit(rule, self.result["rules"])

    def _nat(self, cursor):
        start = cursor.next()
        self._order(STATE_NAT, start.line)
        rule = _new_rule("nat", start.line)
        self._translation(cursor, rule)

    def _rdr(self, cursor):
        start = cursor.next()
        self._order(STATE_NAT, start.line)
        rule = _new_rule("rdr", start.line)
        self._translation(cursor, rule)

    def _translation(self, cursor, rule):
        if cursor.accept("pass"):
            rule["pass"] = True
        if cursor.accept("log"):
            rule["log"] = True
        self._rule_head(cursor, rule, translation=True)
        if cursor.accept("->"):
            targets = self._host_list(cursor)
            rule["redirect"] = {"addresses": targets, "port": None}
            if cursor.accept("port"):
                if rule["action"] != "rdr":
                    raise _StatementError("syntax error", cursor.error_line())
                low = _port_number(cursor.word(), "tcp", rule["line"])
                high = low
                if cursor.accept(":"):
                    high = _port_number(cursor.word(), "tcp", rule["line"])
                rule["redirect"]["port"] = [low, high]
            pool = cursor.accept("round-robin", "random", "bitmask")
            if pool:
                rule["redirect"]["pool"] = pool.value
            elif any(a["type"] == "dynif" for a in targets) or len(targets) > 1:
                rule["redirect"]["pool"] = "round-robin"
            if cursor.accept("sticky-address"):
                rule["redirect"]["sticky"] = True
            if rule["action"] == "nat" and cursor.accept("static-port"):
                rule["static_port"] = True
        elif rule["action"] in ("nat", "rdr"):
            raise _StatementError("syntax error", cursor.error_line())
        self._emit(rule, self.result["nat"])

    def _filter(self, cursor):
        start = cursor.next()
        self._order(STATE_FILTER, start.line)
        rule = _new_rule(start.value, start.line)
        if start.value == "block":
            policy = cursor.accept("drop", "return", "return-rst", "return-icmp", "return-icmp6")
            rule["block_policy"] = policy.value if policy else self._block_policy()
        if start.value == "pass":
            rule["state"] = "keep"
        self._rule_head(cursor, rule)
        self._filter_options(cursor, rule)
        if rule["action"] == "pass" and rule["state"] != "no" and rule["flags"] is None:
            rule["flags"] = "S/SA"
        self._emit(rule, self.result["rules"])

    def _block_policy(self):
        return self.result["options"].get("block-policy", "drop")

    def _rule_head(self, cursor, rule, translation=False):
        """direction, log, quick, on IF, af, proto, from/to: the part every rule kind shares."""
        if not translation:
            direction = cursor.accept("in", "out")
            if direction:
                rule["direction"] = direction.value
            while cursor.at("log", "quick"):
                if cursor.next().value == "quick":
                    rule["quick"] = True
                    continue
                rule["log"] = True
                if cursor.accept("("):
                    options = []
                    while not cursor.accept(")"):
                        if not cursor.accept(","):
                            options.append(cursor.word())
                    rule["log_options"] = options
        if cursor.accept("on"):
            negated = bool(cursor.accept("!"))
            rule["interfaces"] = self._name_list(cursor)
            rule["interface_not"] = negated
        elif translation:
            raise _StatementError("syntax error", cursor.error_line())
        family = cursor.accept("inet", "inet6")
        if family:
            rule["af"] = family.value
        if cursor.accept("proto"):
            protos = self._name_list(cursor)
            for proto in protos:
                if proto not in PROTOCOLS and not proto.isdigit():
                    raise _StatementError(f"unknown protocol {proto}", rule["line"])
            rule["protos"] = protos
        if cursor.accept("all"):
            return
        if cursor.accept("from"):
            rule["src_hosts"], rule["src_ports"] = self._endpoint_spec(cursor, rule)
        if cursor.accept("to"):
            rule["dst_hosts"], rule["dst_ports"] = self._endpoint_spec(cursor, rule)

    def _endpoint_spec(self, cursor, rule):
        hosts = [_any()]
        if not cursor.at("port"):
            negated = bool(cursor.accept("!"))
            hosts = self._host_list(cursor)
            if negated:
                for host in hosts:
                    host["neg"] = True
        ports = [None]
        if cursor.accept("port"):
            ports = self._port_list(cursor, rule)
        return hosts, ports

    def _host_list(self, cursor):
        if cursor.accept("{"):
            hosts = []
            while not cursor.accept("}"):
                if cursor.accept(","):
                    continue
                negated = bool(cursor.accept("!"))
                for host in self._host(cursor):
                    host["neg"] = negated
                    hosts.append(host)
            return hosts
        return self._host(cursor)

    def _host(self, cursor):
        """One host specification; a list because an interface name or `self` stands for its addresses."""
        token = cursor.next()
        line = token.line
        if token.value == "any":
            return [_any()]
        if token.value in ("no-route", "urpf-failed"):
            return [{"type": token.value}]
        if token.value == "<":
            name = cursor.word()
            cursor.expect(">")
            self.referenced_tables.add(name)
            return [{"type": "table", "name": name}]
        if token.value == "(":
            name = cursor.word()
            modifier = None
            if ":" in name:
                name, modifier = name.split(":", 1)
            cursor.expect(")")
            return [{"type": "dynif", "name": name, "modifier": modifier}]
        if token.kind not in ("word", "string"):
            raise _StatementError("syntax error", line)
        text = token.value
        prefix = None
        if cursor.accept("/"):
            prefix = cursor.number()
        if text == "self":
            return [_net_address(ipaddress.ip_network(a.ip)) for a in netif.all_addresses()]
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            link = netif.find(text)
            if link is None:
                raise _StatementError("could not parse host specification", line)
            return [_net_address(ipaddress.ip_network(a.ip)) for a in netif.addresses(link)]
        if prefix is None:
            prefix = address.max_prefixlen
        if prefix > address.max_prefixlen:
            raise _StatementError("could not parse host specification", line)
        network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
        return [_net_address(network)]

    def _port_list(self, cursor, rule):
        if cursor.accept("{"):
            ports = []
            while not cursor.accept("}"):
                if not cursor.accept(","):
                    ports.append(self._port(cursor, rule))
            return ports
        return [self._port(cursor, rule)]

    def _port(self, cursor, rule):
        proto = _single_proto(rule)
        operator = cursor.accept(*PORT_OPERATORS)
        if operator:
            return {"op": operator.value, "ports": [_port_number(cursor.word(), proto, rule["line"])]}
        first = cursor.word()
        if ":" in first:
            low, _, high = first.partition(":")
            return {"op": ":", "ports": [_port_number(low, proto, rule["line"]),
                                         _port_number(high, proto, rule["line"])]}
        ranged = cursor.accept(*RANGE_OPERATORS)
        if ranged:
            return {"op": ranged.value, "ports": [_port_number(first, proto, rule["line"]),
                                                  _port_number(cursor.word(), proto, rule["line"])]}
        return {"op": "=", "ports": [_port_number(first, proto, rule["line"])]}

    def _filter_options(self, cursor, rule):
        while not cursor.done():
            token = cursor.next()
            value = token.value
            if value == "flags":
                if cursor.accept("any"):
                    rule["flags"] = "any"
                    continue
                first = cursor.word()
                second = None
                if cursor.accept("/"):
                    second = cursor.word()
                elif first.startswith("/"):
                    first, second = "", first[1:]
                for flag in first + (second or ""):
                    if flag not in TCP_FLAGS:
                        raise _StatementError("syntax error", token.line)
                rule["flags"] = f"{first}/{second}" if second is not None else first
            elif value in ("keep", "modulate", "synproxy"):
                if rule["action"] != "pass":
                    raise _StatementError("keep state is great, but only for pass rules", self.end_line)
                cursor.expect("state")
                rule["state"] = value
                if cursor.accept("("):
                    self._state_options(cursor, rule)
            elif value == "no":
                cursor.expect("state")
                rule["state"] = "no"
            elif value == "scrub" and rule["action"] == "match":
                cursor.expect("(")
                while not cursor.accept(")"):
                    if cursor.accept(","):
                        continue
                    option = cursor.next()
                    if not _scrub_option(cursor, option, rule["scrub"]):
                        raise _StatementError("syntax error", option.line)
            elif value in ("label", "tag", "tagged", "queue"):
                rule[value] = cursor.word()
            elif value == "allow-opts":
                rule["allow_opts"] = True
            elif value in ("icmp-type", "icmp6-type"):
                rule["icmp_keyword"] = value
                rule["icmp_types"] = self._name_list(cursor)
                family = "inet" if value == "icmp-type" else "inet6"
                for name in rule["icmp_types"]:
                    if icmp_type_number(name, family) is None:
                        raise _StatementError(f"unknown {value} {name}", token.line)
            else:
                raise _StatementError("syntax error", token.line)
        if rule["flags"] not in (None, "any") and rule["protos"] and any(p != "tcp" for p in rule["protos"]):
            raise _StatementError("flags only apply to tcp", self.end_line)
        if rule["state"] == "synproxy" and rule["protos"] != ["tcp"]:
            raise _StatementError("synproxy state only applies to tcp", self.end_line)
        if rule.get("icmp_types"):
            self._icmp_consistent(rule)

    def _icmp_consistent(self, rule):
        protos = set(rule["protos"] or [])
        if not protos or protos - {"icmp", "icmp6", "ipv6-icmp"}:
            raise _StatementError("icmp-type/code only applies to icmp", self.end_line)
        if not rule["af"]:
            raise _StatementError("must indicate address family with icmp-type/code", self.end_line)
        for proto in protos:
            family = "inet" if proto == "icmp" else "inet6"
            if family != rule["af"]:
                name = "icmp" if proto == "icmp" else "icmp6"
                raise _StatementError(f"proto {name} doesn't match address family {rule['af']}", self.end_line)

    def _state_options(self, cursor, rule):
        options = rule["state_options"]
        while not cursor.accept(")"):
            if cursor.accept(","):
                continue
            token = cursor.next()
            value = token.value
            if value in ("max", "max-src-conn", "max-src-nodes", "max-src-states"):
                options[value] = cursor.number()
                if value != "max":
                    options.setdefault("source-track", "rule")
            elif value == "max-src-conn-rate":
                limit = cursor.number()
                cursor.expect("/")
                seconds = cursor.number()
                options[value] = [limit, seconds]
                options.setdefault("source-track", "rule")
            elif value == "overload":
                cursor.expect("<")
                table = cursor.word()
                cursor.expect(">")
                self.referenced_tables.add(table)
                options["overload"] = {"table": table, "flush": None}
                if cursor.accept("flush"):
                    options["overload"]["flush"] = "global" if cursor.accept("global") else "rule"
            elif value == "source-track":
                scope = cursor.accept("rule", "global")
                options["source-track"] = scope.value if scope else "global"
            elif value in ("if-bound", "floating", "no-sync", "sloppy", "pflow"):
                options[value] = True
            elif "." in value and cursor.peek() and cursor.peek().value.isdigit():
                options.setdefault("timeouts", {})[value] = cursor.number()
            else:
                raise _StatementError("syntax error", token.line)
        if "overload" in options and "max-src-conn" not in options and "max-src-conn-rate" not in options:
            raise _StatementError("'overload' requires 'max-src-conn' or 'max-src-conn-rate'", self.end_line)

    # -- expansion (pfctl's expand_rule)

    def _emit(self, rule, target):
        """Append one rule per combination of interface, protocol, source/destination host and port."""
        combinations = itertools.product(
            rule.pop("interfaces") or [None], rule.pop("protos") or [None],
            rule.pop("src_hosts"), rule.pop("src_ports"), rule.pop("dst_hosts"), rule.pop("dst_ports"),
            rule.pop("icmp_types", None) or [None])
        added = mismatched = 0
        for interface, proto, src, src_port, dst, dst_port, icmp_type in combinations:
            if (src_port or dst_port) and proto not in ("tcp", "udp"):
                raise _StatementError("port only applies to tcp/udp", self.end_line)
            families = {h.get("af") for h in (src, dst) if h.get("af")}
            if rule.get("redirect"):
                families |= {a.get("af") for a in rule["redirect"]["addresses"] if a.get("af")}
            if rule["af"]:
                if families - {rule["af"]}:
                    mismatched += 1
                    continue
                family = rule["af"]
            elif len(families) > 1:
                mismatched += 1
                continue
            else:
                family = families.pop() if families else None
            expanded = dict(rule, interface=interface, proto=proto, af=family, icmp_type=icmp_type,
                            src=dict(_endpoint(src), port=src_port), dst=dict(_endpoint(dst), port=dst_port))
            if expanded.get("redirect"):
                addresses = [a for a in rule["redirect"]["addresses"] if a.get("af") in (None, family)]
                expanded["redirect"] = dict(rule["redirect"], addresses=addresses)
            if expanded["action"] == "pass" and proto not in (None, "tcp") and expanded["flags"] == "S/SA":
                expanded["flags"] = None
            target.append(expanded)
            added += 1
        if mismatched and not added:
            raise _StatementError("rule expands to no valid combination", self.end_line)


def _scrub_option(cursor, token, scrub):
    """Read one scrub option (no-df, random-id, min-ttl N, max-mss N, reassemble tcp) into scrub: a scrub rule and
    a match rule's scrub (...) take the same ones. False when token is none of them."""
    if token.value in ("no-df", "random-id"):
        scrub[token.value] = True
    elif token.value in ("min-ttl", "max-mss"):
        scrub[token.value] = cursor.number()
    elif token.value == "reassemble":
        cursor.expect("tcp")
        scrub["reassemble-tcp"] = True
    else:
        return False
    return True


def _new_rule(action, line):
    return {
        "action": action, "line": line, "direction": None, "log": False, "quick": False,
        "interfaces": None, "interface_not": False, "af": None, "protos": None,
        "src_hosts": [_any()], "src_ports": [None], "dst_hosts": [_any()], "dst_ports": [None],
        "flags": None, "state": None, "state_options": {}, "scrub": {}, "block_policy": None,
    }


def _any():
    return {"type": "any"}


def _endpoint(host):
    return {"addr": {k: v for k, v in host.items() if k != "neg"}, "neg": bool(host.get("neg"))}


def _net_address(network):
    return {"type": "net", "af": "inet" if network.version == 4 else "inet6",
            "address": str(network.network_address), "prefix": network.prefixlen}


def _family(address):
    return "inet" if address.version == 4 else "inet6"


def _single_proto(rule):
    protos = rule["protos"] or []
    return "udp" if protos == ["udp"] else "tcp"


def _port_number(text, proto, line):
    if text.isdigit():
        number = int(text)
        if number > 65535:
            raise _StatementError(f"illegal port value {number}", line)
        return number
    try:
        return socket.getservbyname(text, proto)
    except OSError:
        raise _StatementError(f"unknown port {text}", line) from None


def icmp_type_number(name, family):
    """The number of an ICMP (family inet) or ICMPv6 (inet6) type given by name or number; None if unknown."""
    if name.isdigit():
        return int(name) if int(name) <= 255 else None
    return (ICMP_TYPES if family == "inet" else ICMP6_TYPES).get(name)


def _token_text(token):
    return token.value


def _table_file(path, line):
    try:
        with open(path) as handle:
            return [entry.split("#")[0].strip() for entry in handle if entry.split("#")[0].strip()]
    except OSError:
        raise _StatementError(f"cannot load \"{path}\": No such file or directory", line) from None


def _address_text(host):
    if host["type"] == "net":
        full = 32 if host["af"] == "inet" else 128
        return host["address"] if host["prefix"] == full else f"{host['address']}/{host['prefix']}"
    if host["type"] == "dynif":
        return f"({host['name']})"
    if host["type"] == "table":
        return f"<{host['name']}>"
    return host["type"]


# --------------------------------------------------------------------------------------------- printing

def _format_address(endpoint):
    text = _address_text(endpoint["addr"])
    if endpoint["addr"]["type"] == "dynif" and endpoint["addr"].get("modifier"):
        text = f"({endpoint['addr']['name']}:{endpoint['addr']['modifier']})"
    return ("! " if endpoint["neg"] else "") + text


def _format_port(port, proto):
    numbers = port["ports"]
    op = port["op"]
    if op in ("=", "!="):
        name = numbers[0]
        try:
            name = socket.getservbyport(numbers[0], "udp" if proto == "udp" else "tcp")
        except OSError:
            pass
        return f" port {op} {name}"
    if op in RANGE_OPERATORS:
        return f" port {numbers[0]} {op} {numbers[1]}"
    if op == ":":
        return f" port {numbers[0]}:{numbers[1]}"
    return f" port {op} {numbers[0]}"


def _is_all(rule):
    return (rule["src"]["addr"]["type"] == "any" and rule["dst"]["addr"]["type"] == "any"
            and not rule["src"]["neg"] and not rule["dst"]["neg"]
            and not rule["src"]["port"] and not rule["dst"]["port"])


def format_rule(rule):
    """One rule in pfctl's normalised form (pfctl_parser.c print_rule), without a trailing newline."""
    action = rule["action"]
    words = [action]
    if action in ("nat", "rdr") and rule.get("pass"):
        words.append("pass")
    if action == "block":
        words.append(rule.get("block_policy") or "drop")
    if rule["direction"]:
        words.append(rule["direction"])
    if rule["log"]:
        words.append("log")
        if rule.get("log_options"):
            words.append("(" + ", ".join(rule["log_options"]) + ")")
    if rule["quick"]:
        words.append("quick")
    if rule["interface"]:
        words.append(f"on ! {rule['interface']}" if rule["interface_not"] else f"on {rule['interface']}")
    if rule["af"]:
        words.append(rule["af"])
    if rule["proto"]:
        words.append(f"proto {rule['proto']}")
    text = " ".join(words)
    if _is_all(rule):
        text += " all"
    else:
        text += " from " + _format_address(rule["src"])
        if rule["src"]["port"]:
            text += _format_port(rule["src"]["port"], rule["proto"])
        text += " to " + _format_address(rule["dst"])
        if rule["dst"]["port"]:
            text += _format_port(rule["dst"]["port"], rule["proto"])
    if rule["flags"] and rule["flags"] != "any":
        text += f" flags {rule['flags']}"
    elif action == "pass" and rule["proto"] in (None, "tcp") and rule["state"] not in (None, "no"):
        text += " flags any"
    if rule.get("icmp_type"):
        text += f" {rule['icmp_keyword']} {rule['icmp_type']}"
    if action == "pass" and rule["state"] == "no":
        text += " no state"
    elif rule["state"] in ("keep", "modulate", "synproxy"):
        text += f" {rule['state']} state"
    text += _format_state_options(rule["state_options"])
    text += _format_scrub(rule)
    if rule.get("allow_opts"):
        text += " allow-opts"
    if rule.get("label"):
        text += f' label "{rule["label"]}"'
    if rule.get("queue"):
        text += f" queue {rule['queue']}"
    if rule.get("tag"):
        text += f" tag {rule['tag']}"
    if rule.get("tagged"):
        text += f" tagged {rule['tagged']}"
    if action in ("nat", "rdr") and rule.get("redirect"):
        text += " -> " + _format_pool(rule)
    return text


def _format_state_options(options):
    parts = []
    if "max" in options:
        parts.append(f"max {options['max']}")
    if options.get("no-sync"):
        parts.append("no-sync")
    if "source-track" in options:
        parts.append(f"source-track {options['source-track']}")
    if "max-src-states" in options:
        parts.append(f"max-src-states {options['max-src-states']}")
    if "max-src-conn" in options:
        parts.append(f"max-src-conn {options['max-src-conn']}")
    if "max-src-conn-rate" in options:
        limit, seconds = options["max-src-conn-rate"]
        parts.append(f"max-src-conn-rate {limit}/{seconds}")
    if "max-src-nodes" in options:
        parts.append(f"max-src-nodes {options['max-src-nodes']}")
    if "overload" in options:
        overload = f"overload <{options['overload']['table']}>"
        if options["overload"]["flush"]:
            overload += " flush"
        if options["overload"]["flush"] == "global":
            overload += " global"
        parts.append(overload)
    for flag in ("if-bound", "sloppy", "pflow"):
        if options.get(flag):
            parts.append(flag)
    timeouts = dict(options.get("timeouts", {}))
    if "max-src-conn-rate" in options:
        timeouts.setdefault("src.track", options["max-src-conn-rate"][1])
    for name, seconds in timeouts.items():
        parts.append(f"{name} {seconds}")
    return f" ({', '.join(parts)})" if parts else ""


def _format_scrub(rule):
    scrub = rule["scrub"]
    if rule["action"] == "scrub":
        text = ""
        if scrub.get("no-df"):
            text += " no-df"
        if scrub.get("random-id"):
            text += " random-id"
        if scrub.get("min-ttl"):
            text += f" min-ttl {scrub['min-ttl']}"
        if scrub.get("max-mss"):
            text += f" max-mss {scrub['max-mss']}"
        if scrub.get("reassemble-tcp"):
            text += " reassemble tcp"
        return text + " fragment reassemble"
    if not scrub:
        return ""
    parts = []
    if scrub.get("no-df"):
        parts.append("no-df")
    if scrub.get("random-id"):
        parts.append("random-id")
    if scrub.get("min-ttl"):
        parts.append(f"min-ttl {scrub['min-ttl']}")
    if scrub.get("reassemble-tcp"):
        parts.append("reassemble tcp")
    if scrub.get("max-mss"):
        parts.append(f"max-mss {scrub['max-mss']}")
    return " scrub (" + " ".join(parts) + ")"


def _format_pool(rule):
    redirect = rule["redirect"]
    texts = [_address_text(a) for a in redirect["addresses"]]
    text = texts[0] if len(texts) == 1 else "{ " + ", ".join(texts) + " }"
    port = redirect.get("port")
    if rule["action"] == "rdr" and port:
        text += f" port {port[0]}" + (f":{port[1]}" if port[1] != port[0] else "")
    if redirect.get("pool"):
        text += f" {redirect['pool']}"
    if redirect.get("sticky"):
        text += " sticky-address"
    if rule.get("static_port"):
        text += " static-port"
    return text


def format_table_definition(name, table):
    text = f"table <{name}>"
    for flag in ("const", "persist", "counters"):
        if flag in table["flags"]:
            text += f" {flag}"
    if table["addresses"]:
        text += " { " + " ".join(table["addresses"]) + " }"
    return text
