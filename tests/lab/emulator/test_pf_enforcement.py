"""The lab's pf enforced with nftables (lab.freebsd.pfnft).

Three layers:
- translation: pf kernel state in, nft script out (a pure function, no root needed);
- semantics: translated rulesets loaded into a scratch pair of network namespaces, probed with real TCP
  (pf's last-match-wins and quick, block return versus drop, state limits with overload);
- a lab host of its own: the rendered pf.conf of the project loaded with pfctl, probed from the machine side
  (rdr to a listener on the jail address, a port that is not allowed, sshd, nat from the jail, pfctl -d).
Every listener is a bounded Python process; all traffic stays inside 198.18.0.0/15.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from lab.freebsd import netif, pfconf, pfnft

LINKS = [
    {"ifname": "vtnet0", "ifindex": 2, "link_type": "ether",
     "addr_info": [{"family": "inet", "local": "198.18.7.2", "prefixlen": 24},
                   {"family": "inet6", "local": "2001:db8:7::2", "prefixlen": 64}]},
    {"ifname": "lo", "ifindex": 1, "link_type": "loopback",
     "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {"ifname": "lo1", "ifindex": 100, "link_type": "none",
     "addr_info": [{"family": "inet", "local": "10.0.0.1", "prefixlen": 32}]},
]


@pytest.fixture
def fake_links(monkeypatch):
    """The parser and pfnft see a lab host's interfaces without asking the machine."""
    def interfaces():
        links = json.loads(json.dumps(LINKS))
        for link in links:
            link["name"] = netif.to_freebsd(link["ifname"])
        return links
    monkeypatch.setattr(netif, "interfaces", interfaces)


def _state(text, enabled=True, **extra):
    ruleset = pfconf.parse(text, "pf.conf")
    tables = {name: {"flags": t["flags"], "addresses": list(t["addresses"])} for name, t in ruleset.pop("tables").items()}
    return {"enabled": enabled, "since": 0, "file": "pf.conf", "ruleset": dict(ruleset), "tables": tables, **extra}


def _chain(script, name):
    """The rule lines of one chain of a translated script."""
    match = re.search(rf"\tchain {name} {{\n(.*?)\n\t}}", script, re.S)
    assert match, f"no chain {name} in\n{script}"
    return [line.strip() for line in match.group(1).splitlines() if not line.strip().startswith("type ")]


def _numbers(rules):
    return [int(re.search(r'comment "pf @(\d+)"', rule).group(1)) for rule in rules if 'comment "pf @' in rule]


def _translate(text, **extra):
    return pfnft.translate(_state(text, **extra), pfnft.interface_addresses())


# ------------------------------------------------------------------------------------ translation

def test_disabled_pf_only_removes_the_lab_table(fake_links):
    assert _translate("pass in all\n", enabled=False) == "table inet pf\ndelete table inet pf\n"
    enabled = _translate("pass in all\n")
    assert enabled.startswith("table inet pf\ndelete table inet pf\ntable inet pf {\n")


def test_quick_rules_first_in_order_then_the_others_last_match_first(fake_links):
    script = _translate(
        "block in all\n"                                        # 0
        "pass in proto tcp to port 22\n"                        # 1
        "block in quick proto tcp to port 23\n"                 # 2
        "pass in quick proto udp to port 53\n"                  # 3
        "pass out all\n"                                        # 4
        "block return in proto tcp to port 24\n")               # 5
    assert _numbers(_chain(script, "filter_in")) == [2, 3, 5, 1, 0]
    assert _numbers(_chain(script, "filter_out")) == [4, 4]     # flags S/SA: tcp with flags, or not tcp


def test_rules_without_direction_go_both_ways_and_block_return_depends_on_direction(fake_links):
    script = _translate("block return all\n")
    inbound, outbound = _chain(script, "filter_in"), _chain(script, "filter_out")
    assert inbound[-2:] == ['meta l4proto 6 counter reject with tcp reset comment "pf @0"',
                            'counter reject with icmpx type port-unreachable comment "pf @0"']
    assert outbound[-1] == 'counter drop comment "pf @0"'
    rst = _chain(_translate("block return-rst in proto tcp all\n"), "filter_in")[-1]
    assert rst == 'meta l4proto 6 counter reject with tcp reset comment "pf @0"'


def test_match_parts_interface_family_protocol_addresses_ports_flags(fake_links):
    script = _translate(
        "pass in on ! lo1 inet proto tcp from 192.0.2.0/24 port > 1023 to ! 10.0.0.1 port 2000 >< 2004 "
        "flags S/SAFR keep state\n"
        "pass in on vtnet0 proto udp to (vtnet0) port { 53 123:125 } no state\n"
        "pass in inet6 proto ipv6-icmp icmp6-type neighbrsol\n"
        "pass in proto tcp to port 2000 <> 2004 flags any\n")
    rules = _chain(script, "filter_in")
    assert ('iifname != "lo1" meta l4proto 6 ip saddr 192.0.2.0/24 tcp sport > 1023 ip daddr != 10.0.0.1 '
            'tcp dport 2001-2003 tcp flags & (fin | syn | rst | ack) == syn counter '
            'ct mark set ct mark & 0x3 | 0x1 accept comment "pf @0"') in rules
    for port in ("53", "123-125"):
        assert (f'iifname "vtnet0" meta l4proto 17 ip daddr 198.18.7.2 udp dport {port} counter accept '
                f'comment "pf @{1 if port == "53" else 2}"') in rules
        assert any(f"ip6 daddr 2001:db8:7::2 udp dport {port} counter accept" in rule for rule in rules)
    assert any("meta nfproto ipv6 icmpv6 type 135 counter" in rule for rule in rules)
    assert any("tcp dport != 2000-2004 counter ct mark set" in rule for rule in rules)


def test_tables_are_sets_per_family_and_overload_tables_get_dynamic_sets(fake_links):
    script = _translate(
        "table <admins> const { 198.18.0.0/15, 2001:db8:9::/48, !198.18.5.5, (vtnet0) }\n"
        "table <bruteforce> persist\n"
        "block in quick from <bruteforce>\n"
        "pass in proto tcp from <admins> to port 22 keep state "
        "(max-src-conn 10, max-src-conn-rate 15/60, overload <bruteforce> flush global)\n")
    assert "set t_admins_4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n" \
           "\t\telements = { 198.18.0.0/15, 198.18.7.2 }\n\t}" in script
    assert "elements = { 2001:db8:9::/48, 2001:db8:7::2 }" in script
    assert "set t_bruteforce_4d {\n\t\ttype ipv4_addr\n\t\tsize 65535\n\t\tflags dynamic,timeout\n" \
           "\t\ttimeout 365d\n\t}" in script
    rules = _chain(script, "filter_in")
    assert 'ip saddr @t_bruteforce_4 counter drop comment "pf @0"' in rules
    assert 'ip saddr @t_bruteforce_4d counter drop comment "pf @0"' in rules
    limits = [rule for rule in rules if "ct state new" in rule and "ip saddr @t_admins_4" in rule]
    assert [re.search(r"(add|update) @\S+ \{ ip saddr [^}]*\}", rule).group(0) for rule in limits] == [
        "add @m1_max_src_conn_4 { ip saddr ct count over 10 }",
        "update @m1_max_src_conn_rate_4 { ip saddr limit rate over 15/minute burst 15 packets }"]
    assert all("add @t_bruteforce_4d { ip saddr } counter drop" in rule for rule in limits)
    # flush global: states of a listed source are no longer honoured.
    assert any(rule.startswith("ct state established,related ct direction original") and
               "ct original ip saddr != @t_bruteforce_4 ct original ip saddr != @t_bruteforce_4d accept" in rule
               for rule in rules)


def test_rates_that_are_not_per_second_or_minute():
    assert pfnft._rate(3, 1) == "3/second"
    assert pfnft._rate(15, 60) == "15/minute"
    assert pfnft._rate(5, 30) == "10/minute"
    assert pfnft._rate(7, 3601) == "168/day"


def test_translation_rules(fake_links):
    script = _translate(
        "set skip on lo0\n"
        "nat on vtnet0 inet from 10.0.0.1 to any -> (vtnet0)\n"
        "nat on vtnet0 inet proto udp from 10.0.0.2 to any -> 198.18.7.2 static-port\n"
        "nat pass on vtnet0 inet from 10.0.0.3 to any -> 198.18.7.2\n"
        "rdr on vtnet0 inet proto tcp to (vtnet0) port 9001 -> 10.0.0.1\n"
        "rdr pass on vtnet0 inet proto tcp to 198.18.7.2 port 8080 -> 10.0.0.1 port 80\n")
    assert _chain(script, "nat_postrouting") == [
        'oifname "lo" accept',
        'oifname "vtnet0" ip saddr 10.0.0.1 meta l4proto { 6, 17 } counter masquerade to :50001-65535 '
        'comment "pf nat @0"',
        'oifname "vtnet0" ip saddr 10.0.0.1 counter masquerade comment "pf nat @0"',
        'oifname "vtnet0" meta l4proto 17 ip saddr 10.0.0.2 counter snat ip to 198.18.7.2 comment "pf nat @1"',
        'oifname "vtnet0" ip saddr 10.0.0.3 meta l4proto { 6, 17 } meta mark set meta mark | 0x8 counter '
        'snat ip to 198.18.7.2:50001-65535 comment "pf nat @2"',
        'oifname "vtnet0" ip saddr 10.0.0.3 meta mark set meta mark | 0x8 counter snat ip to 198.18.7.2 '
        'comment "pf nat @2"']
    assert _chain(script, "nat_prerouting") == [
        'iifname "lo" accept',
        'iifname "vtnet0" meta l4proto 6 ip daddr 198.18.7.2 tcp dport 9001 counter dnat ip to 10.0.0.1 '
        'comment "pf rdr @0"',
        'iifname "vtnet0" meta l4proto 6 ip daddr 198.18.7.2 tcp dport 8080 meta mark set meta mark | 0x4 '
        'counter dnat ip to 10.0.0.1:80 comment "pf rdr @1"']
    assert "meta mark & 0x4 == 0x4 ct mark set ct mark & 0x3 | 0x1 accept" in _chain(script, "filter_in")
    assert "meta mark & 0x8 == 0x8 ct mark set ct mark & 0x3 | 0x2 accept" in _chain(script, "filter_out")


def test_states_belong_to_a_generation_that_flushing_advances(fake_links):
    text = "block all\npass in proto tcp to port 22 flags any\n"
    first = _chain(_translate(text), "filter_in")
    later = _chain(_translate(text, state_generation=3), "filter_in")
    assert "ct state established,related ct direction original ct mark & 0xffff01 == 0x1 accept" in first
    assert "ct state established,related ct direction original ct mark & 0xffff01 == 0x301 accept" in later
    assert any("ct mark set ct mark & 0x3 | 0x301 accept" in rule for rule in later)


def test_overload_entries_found_in_nft_are_merged_into_the_table():
    state = {"tables": {"bruteforce": {"flags": ["persist"], "addresses": ["192.0.2.9"]}}}
    listing = {"nftables": [{"metainfo": {}},
                            {"set": {"name": "t_bruteforce_4d", "elem": ["198.18.7.1", "192.0.2.9"]}},
                            {"set": {"name": "t_bruteforce_6d", "elem": [{"elem": {"val": "2001:db8::1"}}]}},
                            {"set": {"name": "m1_max_src_conn_4", "elem": ["198.18.9.9"]}}]}
    pfnft.merge_dynamic_entries(state, listing)
    assert state["tables"]["bruteforce"]["addresses"] == ["192.0.2.9", "198.18.7.1", "2001:db8::1"]


def test_overload_entries_carry_the_time_they_entered_the_dynamic_set():
    """pfctl -T expire reads when an entry was added: for an overload entry, its age in nft's set (the timeout
    minus what is left of it)."""
    state = {"tables": {"bruteforce": {"flags": ["persist"], "addresses": []}}}
    listing = {"nftables": [{"set": {"name": "t_bruteforce_4d", "elem": [
        {"elem": {"val": "198.18.7.1", "timeout": 31536000, "expires": 31535400}}]}}]}
    pfnft.merge_dynamic_entries(state, listing, now=1_000_000)
    assert state["tables"]["bruteforce"]["added"] == {"198.18.7.1": 1_000_000 - 600}


def test_unknown_icmp_type_is_refused_like_pfctl(fake_links):
    with pytest.raises(pfconf.PfSyntaxError) as refused:
        pfconf.parse("pass in inet proto icmp icmp-type { echoreq unreachable }\n", "pf.conf")
    assert refused.value.errors == ["pf.conf:1: unknown icmp-type unreachable"]


# ------------------------------------------------------------------------------------ on a lab host

LAB_NAME, LAB_INDEX = "pfenforce", 7
JAIL_IP = "10.0.0.1"
LISTENER_SECONDS = 300
# A bounded TCP listener: answers at most 20 connections with "ADDRESS:PORT from PEER:PORT", then exits, and
# exits anyway after its time limit. An optional device binds it (and its answers) to one interface.
LISTENER = r"""
import socket, sys, time
host, port, seconds, device = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if device:
    server.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
server.bind((host, port))
server.listen(8)
print("ready", flush=True)
deadline = time.monotonic() + seconds
for _ in range(20):
    server.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        conn, peer = server.accept()
    except socket.timeout:
        break
    conn.sendall(f"{host}:{port} from {peer[0]}:{peer[1]}\n".encode())
    conn.close()
"""
# One connection attempt, optionally from a given source address: prints the answer, "timeout" or "refused".
CLIENT = r"""
import socket, sys
host, port, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    conn = socket.create_connection((host, port), timeout=2, source_address=(source, 0) if source else None)
    conn.settimeout(2)
    print(conn.recv(200).decode().strip())
except socket.timeout:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
"""


def _netns(name):
    from lab import paths
    return ["ip", "netns", "exec", paths.netns_name(name)]


def _connect(host, port, source="", inside=None):
    """Answer of one connection attempt made from the machine, or from inside a lab host's namespace."""
    argv = (inside or []) + [sys.executable, "-c", CLIENT, host, str(port), source]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True).stdout.strip()


class Listeners:
    """Bounded listener processes, each killed by its own process group at the end."""

    def __init__(self):
        self.processes = []

    def start(self, host, port, inside=None, device=""):
        argv = (inside or []) + [sys.executable, "-c", LISTENER, host, str(port), str(LISTENER_SECONDS), device]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        self.processes.append(process)
        line = process.stdout.readline().strip()        # the listener prints "ready" or dies with a traceback
        assert line == "ready", process.stderr.read()

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def relay_pf():
    """A lab host of its own with the project's rendered pf.conf loaded (and listeners around it)."""
    from lab import host, paths
    from torjail.render import render_all
    from torjail.settings import build_settings

    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    host.destroy(LAB_NAME, log=lambda text: None)
    host.up(LAB_NAME, LAB_INDEX, log=lambda text: None)
    listeners = Listeners()
    try:
        address, gateway = paths.address(LAB_INDEX), paths.gateway(LAB_INDEX)
        settings = build_settings(LAB_NAME, {
            "identity": "on-relay", "relay_nickname": "LabRelay", "relay_contact": "ops@example.org",
            "public_ipv4": address,
            "ext_if": "vtnet0", "jail_ip": JAIL_IP, "admin_networks": ["198.18.0.0/15"]})
        pf_conf = next(f.content for f in render_all(settings) if f.kind == "pf.conf")
        # The file goes in a here-document: with pyinfra imported in the session (gevent's subprocess), ssh's
        # standard input cannot be fed.
        assert "PFCONF" not in pf_conf
        status, _out, err = host.ssh(LAB_NAME, f"cat > /etc/pf.conf <<'PFCONF'\n{pf_conf}PFCONF\n"
                                     f"ifconfig lo1 create && ifconfig lo1 inet {JAIL_IP}/32 alias && kldload pf")
        assert status == 0, err
        inside = _netns(LAB_NAME)
        listeners.start(JAIL_IP, 9001, inside=inside)
        listeners.start(address, 8080, inside=inside)
        # The machine-side listener answers only through the lab's link, so nothing can leave the machine.
        listeners.start(gateway, 8081, device=paths.veth_name(LAB_INDEX))
        assert _connect(address, 8080).startswith(f"{address}:8080 from {gateway}:"), "open before pf"
        # Enabled from a detached process once this session has ended: the first packet of a session open when
        # pf starts must come from the client (sshd's rule has flags any); sshd's own next packet would meet
        # `pass out ... keep state`, whose flags S/SA refuse a segment in mid-stream, on FreeBSD as here.
        status, _out, err = host.ssh(LAB_NAME, "pfctl -f /etc/pf.conf && "
                                               "(sleep 1; pfctl -e) </dev/null >/dev/null 2>&1 &")
        assert status == 0, err
        time.sleep(2)
        yield {"address": address, "gateway": gateway, "inside": inside}
    finally:
        listeners.stop()
        if not os.environ.get("TORJAIL_LAB_KEEP"):
            host.destroy(LAB_NAME, log=lambda text: None)


@pytest.mark.lab
def test_relay_port_on_the_public_address_reaches_the_jail_listener(relay_pf):
    answer = _connect(relay_pf["address"], 9001)
    assert answer.startswith(f"{JAIL_IP}:9001 from {relay_pf['gateway']}:"), answer


@pytest.mark.lab
def test_a_port_that_is_not_allowed_is_dropped_by_the_default_block(relay_pf):
    assert _connect(relay_pf["address"], 8080) == "timeout"
    listing = subprocess.run(relay_pf["inside"] + ["nft", "list", "chain", "inet", "pf", "filter_in"],
                             capture_output=True, text=True, check=True).stdout
    default_block = [line for line in listing.splitlines() if "drop" in line][-1]
    assert 'log prefix "pf @' in default_block
    assert int(re.search(r"counter packets (\d+)", default_block).group(1)) > 0, listing


@pytest.mark.lab
def test_sshd_stays_reachable_and_pf_reports_enabled(relay_pf):
    from lab import host
    status, out, err = host.ssh(LAB_NAME, "pfctl -s info | head -1; pfctl -s nat")
    assert status == 0, err
    assert out.startswith("Status: Enabled")
    assert f"rdr on vtnet0 inet proto tcp from any to {relay_pf['address']} port = 9001 -> {JAIL_IP}" in out


@pytest.mark.lab
def test_the_jail_reaches_out_through_nat(relay_pf):
    answer = _connect(relay_pf["gateway"], 8081, source=JAIL_IP, inside=relay_pf["inside"])
    match = re.fullmatch(rf"{re.escape(relay_pf['gateway'])}:8081 from {re.escape(relay_pf['address'])}:(\d+)",
                         answer)
    assert match, answer
    assert 50001 <= int(match.group(1)) <= 65535                   # pf's nat source ports


@pytest.mark.lab
def test_pfctl_disable_opens_everything_and_removes_the_table(relay_pf):
    from lab import host
    status, _out, err = host.ssh(LAB_NAME, "pfctl -d")
    assert status == 0, err
    assert _connect(relay_pf["address"], 8080).startswith(f"{relay_pf['address']}:8080 from")
    assert _connect(relay_pf["address"], 9001) == "refused"          # no rdr any more, nothing listens there
    tables = subprocess.run(relay_pf["inside"] + ["nft", "list", "tables"], capture_output=True, text=True,
                            check=True).stdout
    assert "inet pf" not in tables


# ------------------------------------------------------------------------------------ semantics

SEMANTICS = """\
table <bad> persist
block in all
pass in proto tcp to port 7001
block in quick proto tcp to port 7002
pass in proto tcp to port 7002
pass in proto tcp to port 7003
block return in proto tcp to port 7003
block in quick on vtnet0 from <bad>
pass in on vtnet0 proto tcp to port 7005 keep state (max-src-conn-rate 2/60, overload <bad> flush global)
"""


@pytest.fixture
def scratch_pair():
    """Two scratch network namespaces on one veth link: a client (198.19.250.1) and a server whose end is
    vtnet0 (198.19.250.2); removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    client, server = f"pfsem-{tag}-c", f"pfsem-{tag}-s"
    commands = [
        ["ip", "netns", "add", client], ["ip", "netns", "add", server],
        ["ip", "-n", client, "link", "add", "eth0", "type", "veth", "peer", "name", "vtnet0", "netns", server],
        ["ip", "-n", client, "addr", "add", "198.19.250.1/24", "dev", "eth0"],
        ["ip", "-n", server, "addr", "add", "198.19.250.2/24", "dev", "vtnet0"],
        ["ip", "-n", client, "link", "set", "eth0", "up"], ["ip", "-n", server, "link", "set", "vtnet0", "up"],
        ["ip", "-n", server, "link", "set", "lo", "up"],
    ]
    listeners = Listeners()
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        yield {"client": ["ip", "netns", "exec", client], "server": ["ip", "netns", "exec", server],
               "listeners": listeners}
    finally:
        listeners.stop()
        for name in (client, server):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.mark.lab
@pytest.mark.skipif(shutil.which("nft", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None,
                    reason="needs nft (make deps installs it)")
def test_last_match_quick_block_return_and_overload_with_real_packets(fake_links, scratch_pair):
    state = _state(SEMANTICS)
    script = pfnft.translate(state, {"vtnet0": ["198.19.250.2/24"], "lo0": ["127.0.0.1/8"]})
    subprocess.run(scratch_pair["server"] + ["nft", "-f", "-"], input=script, text=True, check=True)
    for port in (7001, 7002, 7003, 7004, 7005):
        scratch_pair["listeners"].start("198.19.250.2", port, inside=scratch_pair["server"])

    def attempt(port):
        return _connect("198.19.250.2", port, inside=scratch_pair["client"]).split(" from ")[0]

    assert attempt(7001) == "198.19.250.2:7001"        # block all, then pass: the last match passes
    assert attempt(7002) == "timeout"                   # a quick block wins over a later pass
    assert attempt(7003) == "refused"                   # pass, then block return: reset
    assert attempt(7004) == "timeout"                   # only the default block matches
    assert [attempt(7005) for _ in range(2)] == ["198.19.250.2:7005"] * 2
    assert attempt(7005) == "timeout"                   # third connection within 60 s: over the rate
    assert attempt(7001) == "timeout"                   # the source is now in <bad>
    listing = json.loads(subprocess.run(scratch_pair["server"] + ["nft", "-j", "list", "table", "inet", "pf"],
                                        capture_output=True, text=True, check=True).stdout)
    pfnft.merge_dynamic_entries(state, listing)
    assert state["tables"]["bad"]["addresses"] == ["198.19.250.1"]
