"""ExitPolicy lines in tor's grammar (tor(1), ExitPolicy), and whether a policy closes each address family.

tor reads an exit policy first match first, prepends `reject private:*` and, unless IPv6Exit is on, `reject *6:*`,
and appends its own default policy (nearly open) after the operator's lines. So a policy leaves a family open
unless one of its lines rejects every address and port of that family: the last line that matters must be
`reject *:*` (both families), `reject *4:*` (IPv4) or `reject6 *:*` / `reject *6:*` (IPv6).

Address forms, as tor(1) defines them: `*` is every IPv4 and IPv6 address with accept/reject and every IPv6
address with accept6/reject6; `*4` every IPv4 and `*6` every IPv6 address; `private` the internal and link-local
networks of both families; an IPv4 address or an IPv6 address in brackets, each with an optional /bits. tor
ignores (with a warning) an IPv4 address, `*4` or `private` on an accept6/reject6 line: refused here.
"""

import ipaddress
import re
from dataclasses import dataclass

LINE = re.compile(r"(accept|reject)(6?) (\S+)")
TARGET = re.compile(r"(\*4|\*6|\*|private|[0-9.]+|\[[0-9A-Fa-f:.]+\])(?:/(0|[1-9][0-9]{0,2}))?:(\S+)")
PORTS = re.compile(r"\*|([1-9][0-9]{0,4})(?:-([1-9][0-9]{0,4}))?")
EXAMPLES = "like 'accept *:443', 'accept 198.51.100.0/24:80-81', 'accept6 [2001:db8::]/32:*' or 'reject *:*'"


@dataclass(frozen=True)
class Rule:
    """One parsed ExitPolicy line: which families it can match and whether it covers all of them."""

    text: str
    accept: bool
    families: frozenset
    whole: bool  # every address and every port of its families


def _ports(text, line):
    match = PORTS.fullmatch(text)
    low, high = (1, 65535) if text == "*" else (None, None)
    if match and text != "*":
        low = int(match.group(1))
        high = int(match.group(2) or low)
    if not match or not 1 <= low <= high <= 65535:
        raise ValueError(f"expected ports '*', N or N-M with 1 <= N <= M <= 65535 in {line!r}")
    return (low, high) == (1, 65535)


def _address(text, bits, v6_only, line):
    """(families, all addresses of them) of an address spec."""
    if text in ("*", "*4", "*6", "private"):
        if bits is not None:
            raise ValueError(f"expected no /bits after {text!r} in {line!r}")
        if v6_only and text in ("*4", "private"):
            raise ValueError(f"expected an IPv6 address with accept6/reject6 (tor ignores {text!r} there) in {line!r}")
        families = {"*": {6} if v6_only else {4, 6}, "*4": {4}, "*6": {6}, "private": {4, 6}}[text]
        return frozenset(families), text != "private"
    try:
        address = ipaddress.ip_address(text[1:-1] if text.startswith("[") else text)
    except ValueError:
        raise ValueError(f"expected an IPv4 address, or an IPv6 address in brackets like [2001:db8::]/32, "
                         f"in {line!r}") from None
    if (address.version == 6) != text.startswith("["):
        raise ValueError(f"expected IPv6 addresses in brackets ([2001:db8::1]) and IPv4 without, in {line!r}")
    if v6_only and address.version == 4:
        raise ValueError(f"expected an IPv6 address with accept6/reject6 (tor ignores IPv4 there) in {line!r}")
    prefix = address.max_prefixlen if bits is None else int(bits)
    try:
        network = ipaddress.ip_network(f"{address}/{prefix}")
    except ValueError:
        raise ValueError(f"expected /0-/{address.max_prefixlen} without host bits set in {line!r}") from None
    return frozenset({address.version}), network.prefixlen == 0


def parse_rule(line):
    """A Rule from one ExitPolicy line, or ValueError saying what tor's grammar expects."""
    match = LINE.fullmatch(line)
    target = TARGET.fullmatch(match.group(3)) if match else None
    if not target:
        raise ValueError(f"expected one rule per line {EXAMPLES}, got {line!r}")
    action, v6_only = match.group(1), bool(match.group(2))
    families, all_addresses = _address(target.group(1), target.group(2), v6_only, line)
    all_ports = _ports(target.group(3), line)
    return Rule(line, action == "accept", families, all_addresses and all_ports)


def policy_problems(lines, ipv6):
    """What keeps a list of ExitPolicy lines from being a closed policy for the families the relay exits to.

    IPv4 always; IPv6 only with `ipv6` (IPv6Exit 1): without it tor rejects every IPv6 exit itself, so a rule
    that only applies to IPv6 would never be used.
    """
    rules = [parse_rule(line) for line in lines]
    exits = {4, 6} if ipv6 else {4}
    deciding = {}
    problems = []
    for rule in rules:
        if not rule.families & exits:
            problems.append(f"{rule.text!r} applies to IPv6 only, and without public_ipv6 tor exits to no IPv6 "
                            "address (IPv6Exit is off)")
        elif all(family in deciding for family in rule.families & exits):
            decided_by = deciding[min(rule.families & exits)].text
            problems.append(f"{rule.text!r} is never used: {decided_by!r} before it decides every address")
        if rule.whole:
            for family in rule.families:
                deciding.setdefault(family, rule)
    for family in sorted(exits):
        rule = deciding.get(family)
        if rule is not None and rule.accept:
            problems.append(f"{rule.text!r} opens every IPv{family} address and port; expected the policy to "
                            "end in 'reject *:*'")
    missing = [family for family in sorted(exits) if family not in deciding]
    if missing == [4, 6] or missing == [4]:
        problems.append("expected 'reject *:*' as the last line: after the last line tor appends its default "
                        "exit policy, which is nearly open; add 'reject *:*'")
    elif missing == [6]:
        problems.append("expected IPv6 closed too (public_ipv6 is set): after the last line tor appends its "
                        "default exit policy, which is nearly open; add 'reject6 *:*' (or end with 'reject *:*')")
    return problems
