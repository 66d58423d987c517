"""Real packet filtering for the lab's pf: the ruleset pfctl(8) loaded, translated into nftables rules.

pfctl keeps the parsed ruleset in kernel state; after every change (-f, -e, -d, -F, -T) it calls apply(),
which replaces the lab's one nftables table, `inet pf`, in the lab host's network namespace in a single
`nft -f` transaction (the old table is deleted and the new one created, or only deleted when pf is
disabled). translate() is the pure part: pf kernel state and interface addresses in, nft script out.

How pf's evaluation maps onto nftables:
- pf decides with the LAST matching filter rule unless a `quick` rule matches first. nftables stops at the
  first terminal verdict. So each chain holds the quick rules in file order, then the other rules in reverse
  order: the first quick match is what pf would decide, and otherwise the first match in reverse order is
  pf's last match. No match: pass (the chains' policy is accept), as in pf.
- Direction `in` is the chain `filter_in`, reached from the input and forward hooks (after rdr, so rules see
  translated destinations as in pf); `out` is `filter_out` in the postrouting hook after source nat (so rules
  see translated sources, as in pf). Rules without direction go into both.
- States are conntrack entries marked by the rule that created them: a pass rule that keeps state sets a
  ct mark bit for its direction (with the state generation, which `pfctl -F states` advances); the top of
  each chain accepts established/related packets whose connection carries the bit of the direction that
  created it (original packets: the same direction, replies: the other one). A `no state` pass sets no bit,
  so its replies meet the rules again, as in pf.
- rdr is dnat in the prerouting hook, nat is snat (masquerade for `-> ($if)` on the same interface, which
  follows address changes like pf) in postrouting, ports 50001-65535 unless static-port, first match wins
  as in pf. `rdr pass` / `nat pass` mark the packet so the filter passes it (and keeps its state).
- Tables are nft interval sets per address family (t_NAME_4, t_NAME_6); `(if)` is the interface's
  addresses when the ruleset is loaded; `self` and interface names were resolved by the parser.
- `flags S/SA` tests the TCP flags (pf ignores flags for other protocols, so rules without a protocol test
  them on TCP only); `flags any` tests nothing. `block return` rejects with a TCP reset or an ICMP port
  unreachable; `log` sends the packet to nflog group 1 with the prefix "pf @N" (N: the rule's number, as in
  `pfctl -vs rules`); every deciding rule has a counter. `set skip on IF` accepts everything on IF (lo0 is
  Linux's lo), nat and rdr included. antispoof arrives expanded into block rules by the parser.
- State limits: max-src-conn and max-src-states are a per-rule `ct count` per source; max-src-conn-rate
  N/S is a per-rule, per-source token bucket (burst N, refilled N per S seconds, which is pf's own leaky
  counter); overload adds the source to a dynamic set beside the table's (t_NAME_4d), which pfctl reads
  back into the table (sync_tables) before any change, with the time it was added (the element's timeout
  minus what is left of it: the timeout is a year, so nft never drops what pf would keep). `flush` (rule or global) cannot delete conntrack
  entries from a rule: instead the states of any source listed in such a table are no longer honoured, so
  the source's packets meet the rules (normally the `block quick from <table>` that goes with overload).

What nftables cannot express here, or the lab does not:
- max-src-conn and max-src-conn-rate count connections when their first packet is seen, not after the
  TCP handshake as pf does; `max` (states per rule), max-src-nodes, source-track global (all counters are
  per rule), state timeouts, if-bound/floating, sloppy, no-sync and pflow are not enforced.
- synproxy state and modulate state are kept as plain keep state (no SYN proxy, no sequence modulation).
- block return on outbound rules drops instead (nftables rejects only in input/forward/output, and pf's
  outbound rules must run after source nat).
- scrub and match rules change nothing (Linux reassembles fragments for conntrack anyway); max-mss,
  no-df, random-id, min-ttl are not applied. Tags, queues, labels, route-to and friends are ignored.
- Negated table entries (`!addr`) are left out of the set; tables as nat/rdr targets are not translated.
- `(if)` does not follow address changes made after loading (reload to refresh), except nat to the
  outgoing interface's own address (masquerade). A port range redirected to one port maps every port of
  the range onto that one port (pf shifts the range).
- A reload or table change rebuilds the table, which resets the per-source counters of the state limits.
"""

import hashlib
import ipaddress
import itertools
import json
import math
import os
import re
import subprocess
import time

from lab.freebsd import hosttools, netif, pfconf

TABLE = "inet pf"
LOG_GROUP = 1
STATE_BIT = {"in": 0x1, "out": 0x2}
GENERATION_SHIFT = 8
GENERATION_MASK = 0xFFFF << GENERATION_SHIFT
PASS_MARK = {"rdr": 0x4, "nat": 0x8}          # packet mark: translated by a `rdr pass` / `nat pass` rule
NAT_PORTS = "50001-65535"                    # pf's default source port range for nat
SET_SIZE = 65535
# Overload entries stay until pfctl removes them, as in pf; the timeout only lets their age be read back.
DYNAMIC_TIMEOUT = "365d"
IP = {"inet": "ip", "inet6": "ip6"}
NFPROTO = {"inet": "ipv4", "inet6": "ipv6"}
TCP_FLAG_NAMES = {"F": "fin", "S": "syn", "R": "rst", "P": "psh", "A": "ack", "U": "urg", "E": "ecn", "W": "cwr"}
ALL_TCP_FLAGS = "FSRPAUEW"
TCP = pfconf.PROTOCOLS["tcp"]
PORT_PROTOCOLS = f"meta l4proto {{ {TCP}, {pfconf.PROTOCOLS['udp']} }}"      # the protocols with ports
LIMIT_UNITS = (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400))


class EnforcementError(Exception):
    """nft refused the translated ruleset; the message is nft's."""


# --------------------------------------------------------------------------------------------- apply

def enforcing():
    """Whether this root enforces: only where the lab's own nft is installed (a lab host, a network test
    root), so a root without its own network namespace never touches the machine's firewall."""
    return os.access(hosttools.tool("nft"), os.X_OK)


def interface_addresses():
    """{FreeBSD interface name: ["address/prefix", ...]} of the current network namespace."""
    return {link["name"]: [str(address) for address in netif.addresses(link)] for link in netif.interfaces()}


def apply(state):
    """Make the lab's nftables table match pf kernel state; False when this root does not enforce."""
    if not enforcing():
        return False
    script = translate(state, interface_addresses())
    result = subprocess.run([hosttools.tool("nft"), "-f", "-"], input=script, capture_output=True, text=True)
    if result.returncode != 0:
        raise EnforcementError(result.stderr.strip() or f"nft exited with {result.returncode}")
    return True


def sync_tables(state):
    """Copy into pf kernel state the addresses overload rules added to the dynamic sets since the last load."""
    if not enforcing() or not state.get("enabled"):
        return
    result = subprocess.run([hosttools.tool("nft"), "-j", "list", "table", *TABLE.split()],
                            capture_output=True, text=True)
    if result.returncode == 0:
        merge_dynamic_entries(state, json.loads(result.stdout))


def merge_dynamic_entries(state, listing, now=None):
    """Add to state's tables the elements of their dynamic sets found in `nft -j list table` output, each with
    the time it entered the set (pf's tzero, which `pfctl -T expire` reads): the element's timeout minus the
    time it has left."""
    now = time.time() if now is None else now
    by_set = {}
    for name in state.get("tables", {}):
        for family in IP:
            by_set[_set_name(name, family, dynamic=True)] = name
    for item in listing.get("nftables", []):
        found = item.get("set")
        if not found or found.get("name") not in by_set:
            continue
        table = state["tables"][by_set[found["name"]]]
        addresses, added = table["addresses"], table.setdefault("added", {})
        for element in found.get("elem", []):
            text = _element_text(element)
            if text and text not in addresses:
                addresses.append(text)
                added[text] = int(now - _element_age(element))


def _element_age(element):
    """Seconds since a dynamic set element was added (0 when nft does not say)."""
    if isinstance(element, dict) and isinstance(element.get("elem"), dict):
        timing = element["elem"]
        if "timeout" in timing and "expires" in timing:
            return max(0, timing["timeout"] - timing["expires"])
    return 0


def _element_text(element):
    if isinstance(element, dict):
        if "elem" in element:
            return _element_text(element["elem"].get("val"))
        if "prefix" in element:
            return f"{element['prefix']['addr']}/{element['prefix']['len']}"
        return None
    return str(element) if element is not None else None


# --------------------------------------------------------------------------------------------- translate

def translate(state, interfaces):
    """The nft script that replaces the lab's table with pf kernel `state` ({enabled, ruleset, tables,
    state_generation}); `interfaces` maps FreeBSD interface names to their "address/prefix" strings."""
    lines = [f"table {TABLE}", f"delete table {TABLE}"]
    if state.get("enabled"):
        lines += _Translator(state, interfaces).table()
    return "\n".join(lines) + "\n"


def _set_name(table, family, dynamic=False):
    base = re.sub(r"[^A-Za-z0-9_]", "_", table)
    if base != table:
        base += "_" + hashlib.sha1(table.encode()).hexdigest()[:6]
    return f"t_{base}_{4 if family == 'inet' else 6}" + ("d" if dynamic else "")


def _linux_if(name):
    return netif.to_linux(name)


def _quote_list(names):
    quoted = [f'"{_linux_if(n)}"' for n in names]
    return quoted[0] if len(quoted) == 1 else "{ " + ", ".join(quoted) + " }"


def _value_list(values):
    return values[0] if len(values) == 1 else "{ " + ", ".join(values) + " }"


def _network_text(network):
    return str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)


class _Translator:
    def __init__(self, state, interfaces):
        ruleset = state.get("ruleset") or {}
        self.options = ruleset.get("options", {})
        self.rules = ruleset.get("rules", [])
        self.translations = ruleset.get("nat", [])
        self.tables = state.get("tables", {})
        self.generation = (state.get("state_generation", 0) & 0xFFFF) << GENERATION_SHIFT
        self.interfaces = {name: [ipaddress.ip_interface(a) for a in addrs] for name, addrs in interfaces.items()}
        self.sets = {}                                  # nft set name -> definition lines
        self.overload = self._overload_tables()         # table name -> True when states are flushed

    # -- the table

    def table(self):
        chains = {
            "filter_in": self._filter_chain("in"),
            "filter_out": self._filter_chain("out"),
            "nat_prerouting": self._nat_chain("rdr"),
            "nat_postrouting": self._nat_chain("nat"),
        }
        for name in sorted(set(self.tables) | self._referenced_tables()):
            self._table_sets(name)
        lines = [f"table {TABLE} {{"]
        for name, definition in self.sets.items():
            lines += [f"\tset {name} {{"] + [f"\t\t{line}" for line in definition] + ["\t}"]
        hooks = {
            "input": ("filter", "input", "filter", "jump filter_in"),
            "forward": ("filter", "forward", "filter", "jump filter_in"),
            "postrouting": ("filter", "postrouting", "srcnat + 1", "jump filter_out"),
            "nat_prerouting": ("nat", "prerouting", "dstnat", None),
            "nat_postrouting": ("nat", "postrouting", "srcnat", None),
        }
        for name in ("filter_in", "filter_out"):
            lines += [f"\tchain {name} {{"] + [f"\t\t{rule}" for rule in chains[name]] + ["\t}"]
        for name, (kind, hook, priority, jump) in hooks.items():
            body = [jump] if jump else chains[name]
            lines += [f"\tchain {name} {{", f"\t\ttype {kind} hook {hook} priority {priority}; policy accept;"]
            lines += [f"\t\t{rule}" for rule in body] + ["\t}"]
        return lines + ["}"]

    def _referenced_tables(self):
        names = set(self.overload)
        for rule in self.rules + self.translations:
            for side in ("src", "dst"):
                if rule[side]["addr"]["type"] == "table":
                    names.add(rule[side]["addr"]["name"])
        return names

    def _overload_tables(self):
        tables = {}
        for rule in self.rules:
            overload = rule.get("state_options", {}).get("overload")
            if rule["action"] == "pass" and overload:
                tables[overload["table"]] = tables.get(overload["table"], False) or bool(overload["flush"])
        return tables

    def _table_sets(self, name):
        entries = self.tables.get(name, {}).get("addresses", [])
        by_family = {"inet": [], "inet6": []}
        for entry in entries:
            for network in self._table_entry(entry):
                by_family["inet" if network.version == 4 else "inet6"].append(_network_text(network))
        for family, elements in by_family.items():
            kind = "ipv4_addr" if family == "inet" else "ipv6_addr"
            definition = [f"type {kind}", "flags interval", "auto-merge"]
            if elements:
                definition.append("elements = { " + ", ".join(elements) + " }")
            self.sets[_set_name(name, family)] = definition
            if name in self.overload:
                self.sets[_set_name(name, family, dynamic=True)] = [f"type {kind}", f"size {SET_SIZE}",
                                                                    "flags dynamic,timeout",
                                                                    f"timeout {DYNAMIC_TIMEOUT}"]

    def _table_entry(self, entry):
        if entry.startswith("!"):
            return []
        if entry.startswith("("):
            return [ipaddress.ip_network(a.ip) for a in self.interfaces.get(entry.strip("()"), [])]
        try:
            return [ipaddress.ip_network(entry, strict=False)]
        except ValueError:
            return []

    # -- filter chains

    def _filter_chain(self, direction):
        body = []
        skip = self.options.get("skip", [])
        key = "iifname" if direction == "in" else "oifname"
        if skip:
            body.append(f"{key} {_quote_list(skip)} accept")
        body += self._state_rules(direction)
        translated = [rule for rule in self.translations if rule.get("pass")]
        kind = "rdr" if direction == "in" else "nat"
        if any(rule["action"] == kind for rule in translated):
            body.append(f"meta mark & {PASS_MARK[kind]:#x} == {PASS_MARK[kind]:#x} "
                        f"{self._keep_state(direction)} accept")
        filtering = [(number, rule) for number, rule in enumerate(self.rules)
                     if rule["action"] in ("pass", "block") and rule["direction"] in (None, direction)]
        quick = [item for item in filtering if item[1]["quick"]]
        last_match = [item for item in reversed(filtering) if not item[1]["quick"]]
        for number, rule in quick + last_match:
            body += self._filter_rule(number, rule, direction)
        return body

    def _state_rules(self, direction):
        other = "out" if direction == "in" else "in"
        exclusions = {family: [] for family in IP}
        for table, flush in self.overload.items():
            if flush:
                for family, ip in IP.items():
                    for dynamic in (False, True):
                        exclusions[family].append(f"ct original {ip} saddr != @{_set_name(table, family, dynamic)}")
        variants = [[f"meta nfproto {NFPROTO[f]}"] + exclusions[f] for f in IP] if self.overload_flush else [[]]
        rules = []
        for ct_direction, bit_direction in (("original", direction), ("reply", other)):
            bit = STATE_BIT[bit_direction]
            for extra in variants:
                rules.append(" ".join([f"ct state established,related ct direction {ct_direction}",
                                       f"ct mark & {GENERATION_MASK | bit:#x} == {self.generation | bit:#x}"]
                                      + extra + ["accept"]))
        return rules

    @property
    def overload_flush(self):
        return any(self.overload.values())

    def _keep_state(self, direction):
        return f"ct mark set ct mark & {sum(STATE_BIT.values()):#x} | {self.generation | STATE_BIT[direction]:#x}"

    def _filter_rule(self, number, rule, direction):
        nft = []
        for family, parts in self._alternatives(rule, direction):
            if rule["action"] == "pass":
                keeps = rule["state"] in ("keep", "modulate", "synproxy")
                if keeps:
                    nft += self._limits(number, rule, family, parts)
                verdict = ([self._keep_state(direction)] if keeps else []) + ["accept"]
                nft.append(" ".join(parts + self._accounting(number, rule) + verdict + [_comment(number)]))
            else:
                for extra, verdict in self._block_verdicts(rule, direction):
                    nft.append(" ".join(parts + extra + self._accounting(number, rule) + [verdict, _comment(number)]))
        return nft

    def _accounting(self, number, rule):
        return ["counter"] + ([f'log prefix "pf @{number} " group {LOG_GROUP}'] if rule["log"] else [])

    def _block_verdicts(self, rule, direction):
        """(extra match, verdict) pairs for a block rule: pf's return policies, by protocol."""
        policy = rule.get("block_policy") or "drop"
        if direction == "out" or policy == "drop":
            return [([], "drop")]
        reset, unreachable = "reject with tcp reset", "reject with icmpx type port-unreachable"
        if policy in ("return-icmp", "return-icmp6"):
            return [([], unreachable)]
        other = unreachable if policy == "return" else "drop"
        if rule["proto"] == "tcp":
            return [([], reset)]
        if rule["proto"]:
            return [([], other)]
        return [([f"meta l4proto {TCP}"], reset), ([], other)]

    def _limits(self, number, rule, family, parts):
        """Rules in front of a pass rule that drop (and overload) a source over its state limits."""
        options = rule.get("state_options", {})
        if family is None or not options:
            return []
        ip = IP[family]
        suffix = 4 if family == "inet" else 6
        overload = options.get("overload")
        punish = [f"add @{_set_name(overload['table'], family, dynamic=True)} {{ {ip} saddr }}"] if overload else []
        rules = []
        for option, with_overload in (("max-src-states", False), ("max-src-conn", True)):
            if option in options:
                name = f"m{number}_{option.replace('-', '_')}_{suffix}"
                self.sets[name] = [self._key_type(family), f"size {SET_SIZE}", "flags dynamic"]
                rules.append(" ".join(parts + ["ct state new", f"add @{name} {{ {ip} saddr ct count over "
                                                               f"{options[option]} }}"]
                                      + (punish if with_overload else []) + self._accounting(number, rule)
                                      + ["drop", _comment(number)]))
        if "max-src-conn-rate" in options:
            limit, seconds = options["max-src-conn-rate"]
            name = f"m{number}_max_src_conn_rate_{suffix}"
            self.sets[name] = [self._key_type(family), f"size {SET_SIZE}", "flags dynamic,timeout",
                               f"timeout {seconds}s"]
            rules.append(" ".join(parts + ["ct state new", f"update @{name} {{ {ip} saddr limit rate over "
                                                           f"{_rate(limit, seconds)} burst {limit} packets }}"]
                                  + punish + self._accounting(number, rule) + ["drop", _comment(number)]))
        return rules

    @staticmethod
    def _key_type(family):
        return "type ipv4_addr" if family == "inet" else "type ipv6_addr"

    # -- matching

    def _alternatives(self, rule, direction):
        """(family, match parts) for each nft rule that together match what the pf rule matches."""
        common = []
        if rule["interface"]:
            key = "iifname" if direction == "in" else "oifname"
            common.append(f"{key} {'!= ' if rule['interface_not'] else ''}\"{_linux_if(rule['interface'])}\"")
        if rule["proto"]:
            common.append(f"meta l4proto {_proto_number(rule['proto'])}")
        result = []
        for family in self._families(rule):
            sources = self._address(rule["src"], "saddr", family, direction)
            destinations = self._address(rule["dst"], "daddr", family, direction)
            for src, dst, flags in itertools.product(sources, destinations, self._flags(rule)):
                parts = list(common)
                if family and not src and not dst:
                    parts.append(f"meta nfproto {NFPROTO[family]}")
                parts += src + self._port(rule, "src") + dst + self._port(rule, "dst") + flags + self._icmp(rule)
                if None not in parts:
                    result.append((family, parts))
        return result

    def _families(self, rule):
        if rule["af"]:
            return [rule["af"]]
        addresses = [rule[side]["addr"] for side in ("src", "dst")]
        addresses += (rule.get("redirect") or {}).get("addresses", [])
        concrete = {a["af"] for a in addresses if a.get("af")}
        if concrete:
            return [concrete.pop()]
        if rule.get("icmp_type"):
            return ["inet" if rule["icmp_keyword"] == "icmp-type" else "inet6"]
        if (any(a["type"] in ("table", "dynif") for a in addresses)
                or set(rule.get("state_options", {})) & {"max-src-conn", "max-src-states", "max-src-conn-rate"}):
            return ["inet", "inet6"]
        return [None]

    def _address(self, endpoint, field, family, direction):
        """Alternatives (an OR of AND-lists of parts) for one side's address; [] never matches."""
        address, negated = endpoint["addr"], endpoint["neg"]
        kind = address["type"]
        op = "!= " if negated else ""
        if kind == "any":
            return [] if negated else [[]]
        ip = IP.get(family)
        if kind == "net":
            if address["af"] != family:
                return []
            network = ipaddress.ip_network(f"{address['address']}/{address['prefix']}")
            return [[f"{ip} {field} {op}{_network_text(network)}"]]
        if kind == "table":
            sets = [_set_name(address["name"], family)]
            if address["name"] in self.overload:
                sets.append(_set_name(address["name"], family, dynamic=True))
            if negated:
                return [[f"{ip} {field} != @{name}" for name in sets]]
            return [[f"{ip} {field} @{name}"] for name in sets]
        if kind == "dynif":
            values = self._dynif(address, family)
            if not values:
                return [[]] if negated else []
            return [[f"{ip} {field} {op}{_value_list(values)}"]]
        if kind == "no-route":
            return [[f"fib {field} oif {'exists' if negated else 'missing'}"]]
        if kind == "urpf-failed" and field == "saddr" and direction == "in":
            return [[f"fib saddr . iif oif {'exists' if negated else 'missing'}"]]
        return []

    def _dynif(self, address, family):
        found = [a for a in self.interfaces.get(address["name"], [])
                 if (a.version == 4) == (family == "inet")]
        modifier = address.get("modifier")
        if modifier == "network":
            return list(dict.fromkeys(_network_text(a.network) for a in found))
        if modifier == "broadcast":
            return list(dict.fromkeys(str(a.network.broadcast_address) for a in found if a.version == 4))
        if modifier == "peer":
            return []
        if modifier == "0":
            found = found[:1]
        return [str(a.ip) for a in found]

    @staticmethod
    def _port(rule, side):
        port = rule[side]["port"]
        if not port:
            return []
        field = f"{rule['proto']} {'sport' if side == 'src' else 'dport'}"
        op, numbers = port["op"], port["ports"]
        if op == "=":
            return [f"{field} {numbers[0]}"]
        if op in ("!=", "<", ">", "<=", ">="):
            return [f"{field} {op} {numbers[0]}"]
        low, high = numbers
        if op == ":":
            return [f"{field} {low}-{high}" if low != high else f"{field} {low}"]
        if op == "<>":
            return [f"{field} != {low}-{high}"]
        if high - low < 2:                                   # "><" excludes both ends
            return [None]
        return [f"{field} {low + 1}-{high - 1}"]

    @staticmethod
    def _flags(rule):
        flags = rule.get("flags")
        if not flags or flags == "any" or rule["proto"] not in (None, "tcp"):
            return [[]]
        value, _, mask = flags.partition("/")
        mask = mask or ALL_TCP_FLAGS

        def names(letters):
            return " | ".join(TCP_FLAG_NAMES[f] for f in ALL_TCP_FLAGS if f in letters) or "0x0"

        test = f"tcp flags & ({names(mask)}) == {names(value)}"
        if rule["proto"] == "tcp":
            return [[test]]
        return [[f"meta l4proto != {TCP}"], [f"meta l4proto {TCP}", test]]

    @staticmethod
    def _icmp(rule):
        if not rule.get("icmp_type"):
            return []
        if rule["icmp_keyword"] == "icmp-type":
            return [f"icmp type {pfconf.icmp_type_number(rule['icmp_type'], 'inet')}"]
        return [f"icmpv6 type {pfconf.icmp_type_number(rule['icmp_type'], 'inet6')}"]

    # -- translation chains

    def _nat_chain(self, kind):
        body = []
        skip = self.options.get("skip", [])
        key = "iifname" if kind == "rdr" else "oifname"
        if skip:
            body.append(f"{key} {_quote_list(skip)} accept")
        direction = "in" if kind == "rdr" else "out"
        for number, rule in enumerate(r for r in self.translations if r["action"] == kind):
            for family, parts in self._alternatives(rule, direction):
                if family is None:
                    continue
                mark = [f"meta mark set meta mark | {PASS_MARK[kind]:#x}"] if rule.get("pass") else []
                log = [f'log prefix "pf {kind} @{number} " group {LOG_GROUP}'] if rule["log"] else []
                for extra, target in self._targets(rule, family, kind):
                    body.append(" ".join(parts + extra + mark + ["counter"] + log + [target, _comment(number, kind)]))
        return body

    def _targets(self, rule, family, kind):
        """(extra match, nat statement) pairs for a translation rule in one family; [] when untranslatable."""
        redirect = rule.get("redirect") or {"addresses": []}
        ip = IP[family]
        targets = []
        for address in redirect["addresses"]:
            if address["type"] == "net" and address["af"] == family:
                targets.append(_network_text(ipaddress.ip_network(f"{address['address']}/{address['prefix']}")))
            elif address["type"] == "dynif":
                if (kind == "nat" and len(redirect["addresses"]) == 1 and not address.get("modifier")
                        and address["name"] == rule["interface"] and not rule["interface_not"]):
                    return self._with_ports(rule, "masquerade", "masquerade to :" + NAT_PORTS)
                targets += self._dynif(address, family)[:1]
        if not targets:
            return []
        statement = "snat" if kind == "nat" else "dnat"
        if len(targets) > 1:
            choices = ", ".join(f"{i} : {t}" for i, t in enumerate(targets))
            return [([], f"{statement} {ip} to numgen inc mod {len(targets)} map {{ {choices} }}")]
        target = targets[0] if family == "inet" or "/" in targets[0] else f"[{targets[0]}]"
        if kind == "rdr":
            port = redirect.get("port")
            if not port:
                return [([], f"{statement} {ip} to {targets[0]}")]
            ports = str(port[0]) if port[0] == port[1] else f"{port[0]}-{port[1]}"
            extra = [] if rule["proto"] in ("tcp", "udp") else [PORT_PROTOCOLS]
            return [(extra, f"{statement} {ip} to {target}:{ports}")]
        return self._with_ports(rule, f"{statement} {ip} to {targets[0]}", f"{statement} {ip} to {target}:{NAT_PORTS}")

    @staticmethod
    def _with_ports(rule, plain, ranged):
        """pf's nat picks source ports from 50001-65535 unless static-port; only TCP and UDP have ports."""
        if rule.get("static_port"):
            return [([], plain)]
        if rule["proto"] in ("tcp", "udp"):
            return [([], ranged)]
        if rule["proto"]:
            return [([], plain)]
        return [([PORT_PROTOCOLS], ranged), ([], plain)]


def _proto_number(name):
    """Protocols by number: a lab host, like FreeBSD's jail roots, may lack the /etc/protocols nft reads."""
    return int(name) if name.isdigit() else pfconf.PROTOCOLS[name]


def _comment(number, kind=None):
    """Which pf rule an nft rule comes from: its number as `pfctl -vs rules` (or -vs nat) shows it."""
    return f'comment "pf {kind + " " if kind else ""}@{number}"'


def _rate(limit, seconds):
    """pf's N connections per S seconds as an nft rate: the smallest unit that keeps it exact, else per day."""
    for unit, length in LIMIT_UNITS:
        if limit * length % seconds == 0:
            return f"{limit * length // seconds}/{unit}"
    return f"{math.ceil(limit * 86400 / seconds)}/day"
