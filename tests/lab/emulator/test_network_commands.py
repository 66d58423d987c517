"""ifconfig, sockstat and fetch in a private root with its own network: FreeBSD formats and exit codes."""

import os
import re

import pytest

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]

SERVER = """
import http.server, os, sys
os.chdir(sys.argv[1])
server = http.server.HTTPServer(("198.18.99.2", 8080), http.server.SimpleHTTPRequestHandler)
server.timeout = 30
for _ in range(4):
    server.handle_request()
"""


@pytest.fixture(scope="module")
def root():
    from network_root import NetworkRoot

    lab_root = NetworkRoot()
    yield lab_root
    lab_root.close()


def ifconfig(root, *args):
    return root.run("/sbin/ifconfig", *args)


def test_interface_formats(root):
    vtnet = ifconfig(root, "vtnet0").stdout.splitlines()
    assert vtnet[0] == "vtnet0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500"
    assert "\tinet 198.18.99.2 netmask 0xffffff00 broadcast 198.18.99.255" in vtnet
    assert any(re.fullmatch(r"\tether ([0-9a-f]{2}:){5}[0-9a-f]{2}", line) for line in vtnet)
    lo0 = ifconfig(root, "lo0").stdout.splitlines()
    assert lo0[0] == "lo0: flags=1008049<UP,LOOPBACK,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 16384"
    assert "\tinet 127.0.0.1 netmask 0xff000000" in lo0 and "\tgroups: lo" in lo0
    missing = ifconfig(root, "em7")
    assert (missing.returncode, missing.stderr) == (1, "ifconfig: interface em7 does not exist\n")


def test_clone_alias_and_destroy(root):
    assert ifconfig(root, "lo1", "create").returncode == 0
    exists = ifconfig(root, "lo1", "create")
    assert (exists.returncode, exists.stderr) == (1, "ifconfig: SIOCIFCREATE2 (lo1): File exists\n")
    assert ifconfig(root, "lo1").stdout.splitlines()[0] == "lo1: flags=8008<LOOPBACK,MULTICAST> metric 0 mtu 16384"
    assert ifconfig(root, "lo1", "inet", "10.0.0.1/32", "alias").returncode == 0
    assert ifconfig(root, "lo1", "inet", "10.0.0.2", "netmask", "255.255.255.255", "alias").returncode == 0
    shown = ifconfig(root, "lo1").stdout.splitlines()
    assert shown[0].startswith("lo1: flags=1008049<UP,LOOPBACK,RUNNING,MULTICAST,LOWER_UP>")
    assert "\tinet 10.0.0.1 netmask 0xffffffff" in shown and "\tinet 10.0.0.2 netmask 0xffffffff" in shown
    assert ifconfig(root, "-l").stdout.split()[-1] == "lo1"
    assert ifconfig(root, "-g", "lo").stdout.split() == ["lo0", "lo1"]
    assert ifconfig(root, "lo1", "inet", "10.0.0.2", "-alias").returncode == 0
    absent = ifconfig(root, "lo1", "inet", "10.0.0.9", "-alias")
    assert (absent.returncode, absent.stderr) == (
        1, "ifconfig: ioctl (SIOCDIFADDR): Can't assign requested address\n")
    assert "10.0.0.2" not in ifconfig(root, "lo1").stdout
    assert ifconfig(root, "lo1", "destroy").returncode == 0
    assert "lo1" not in ifconfig(root, "-l").stdout.split()
    assert ifconfig(root, "lo", "create").stdout == "lo1\n"
    assert ifconfig(root, "lo1", "destroy").returncode == 0


def test_sockstat_columns(root):
    listener = root.run("/usr/libexec/lab/bin/python3", "-c",
                        "import socket, subprocess, sys\n"
                        "s = socket.socket(); s.bind(('127.0.0.1', 4711)); s.listen()\n"
                        "print(subprocess.run(['/usr/bin/sockstat', '-4', '-l', '-p', '4711'],"
                        " capture_output=True, text=True).stdout, end='')")
    lines = listener.stdout.splitlines()
    assert lines[0] == "USER     COMMAND    PID   FD  PROTO  LOCAL ADDRESS         FOREIGN ADDRESS      "
    assert len(lines) == 2
    assert re.fullmatch(r"root     python3 +\d+ \d+ +tcp4   127\.0\.0\.1:4711 +\*:\*", lines[1]), lines[1]
    assert lines[1].index("tcp4") == 30 and lines[1].index("127.0.0.1") == 37 and lines[1].index("*:*") == 59
    assert root.run("/usr/bin/sockstat", "-4", "-l", "-p", "4711").stdout.splitlines() == [lines[0]]
    bad = root.run("/usr/bin/sockstat", "-Z")
    assert bad.returncode == 1 and bad.stderr.startswith("sockstat: illegal option -- Z\n")


def test_fetch(root):
    root.write("/srv/mirror/base.txz", "not really xz\n" * 100)
    script = (f"/usr/libexec/lab/bin/python3 -c '{SERVER}' /srv/mirror 2>/dev/null & sleep 0.5; "
              "cd /tmp && /usr/bin/fetch -o /tmp/base.txz http://198.18.99.2:8080/base.txz; echo rc=$?; "
              "/usr/bin/fetch -q -o /tmp/quiet.txz http://198.18.99.2:8080/base.txz; echo rc=$?; "
              "/usr/bin/fetch -o /tmp/x http://198.18.99.2:8080/missing.txz; echo rc=$?; "
              "/usr/bin/fetch -o /nodir/x http://198.18.99.2:8080/base.txz; echo rc=$?; wait")
    result = root.sh(script)
    assert result.stdout.split() == ["rc=0", "rc=0", "rc=1", "rc=1"], result.stderr
    errors = result.stderr.splitlines()
    assert re.fullmatch(r"/tmp/base\.txz +1 kB +\d+ kBps +\d+s", errors[0]), errors[0]
    assert errors[1] == "fetch: http://198.18.99.2:8080/missing.txz: Not Found"
    assert errors[2] == "fetch: /nodir/x: open(): No such file or directory"
    assert root.read("/tmp/base.txz") == root.read("/srv/mirror/base.txz")
    refused = root.run("/usr/bin/fetch", "-o", "/tmp/y", "http://198.18.99.2:9/base.txz")
    assert (refused.returncode, refused.stderr) == (1, "fetch: http://198.18.99.2:9/base.txz: Connection refused\n")


NETSTAT_SOCKETS = """
import os, socket, subprocess, sys
server = socket.socket(); server.bind(('127.0.0.1', 4712)); server.listen()
client = socket.create_connection(('127.0.0.1', 4712)); peer, _ = server.accept()
unix = socket.socket(socket.AF_UNIX); unix.bind('/tmp/netstat.sock'); unix.listen()
for args in sys.argv[1:]:
    print(subprocess.run(['/usr/bin/netstat'] + args.split(), capture_output=True, text=True).stdout, end='')
    print('--')
"""


def test_netstat_sockets_as_freebsd_prints_them_and_testinfra_reads_them(root):
    from testinfra.modules.socket import BSDSocket

    result = root.run("/usr/libexec/lab/bin/python3", "-c", NETSTAT_SOCKETS, "-n -a", "-an -p tcp", "-n",
                      "-n -a -f unix")
    assert result.returncode == 0, result.stderr
    every, tcp, connected, unix = result.stdout.split("--\n")[:4]
    lines = every.splitlines()
    assert lines[:2] == ["Active Internet connections (including servers)",
                         "Proto Recv-Q Send-Q Local Address          Foreign Address        (state)"]
    assert "tcp4       0      0 127.0.0.1.4712         *.*                    LISTEN     " in lines
    assert any(re.fullmatch(r"tcp4       0      0 127\.0\.0\.1\.4712 +127\.0\.0\.1\.\d+ +ESTABLISHED", line)
               for line in lines)
    assert "Active UNIX domain sockets" in lines
    assert tcp.splitlines()[0] == lines[0] and "Active UNIX domain sockets" not in tcp
    assert connected.splitlines()[0] == "Active Internet connections"
    assert "LISTEN" not in connected and "ESTABLISHED" in connected
    unix_lines = unix.splitlines()
    assert unix_lines[1].split() == ["Address", "Type", "Recv-Q", "Send-Q", "Inode", "Conn", "Refs", "Nextref",
                                     "Addr"]
    bound = [line.split() for line in unix_lines if line.endswith(" /tmp/netstat.sock")]
    assert len(bound) == 1 and bound[0][1] == "stream" and bound[0][4] != "0" and len(bound[0]) == 9

    class Parsed(BSDSocket):
        _command = "/usr/bin/netstat"

        def check_output(self, command, *args):
            return {"/usr/bin/netstat -n -a": every, "/usr/bin/netstat -n -a -f unix": unix}[command % args]

    assert Parsed("tcp://127.0.0.1:4712").is_listening
    assert not Parsed("tcp://127.0.0.1:4713").is_listening
    assert ("tcp", "127.0.0.1", 4712) in set(Parsed(None)._iter_sockets(True))
    assert Parsed("unix:///tmp/netstat.sock").is_listening
    bad = root.run("/usr/bin/netstat", "-Z")
    assert bad.returncode == 1 and bad.stderr.startswith("netstat: illegal option -- Z\nusage: netstat ")


def test_netstat_routing_tables(root):
    lines = root.run("/usr/bin/netstat", "-rn", "-f", "inet").stdout.splitlines()
    assert lines[:4] == ["Routing tables", "", "Internet:", "Destination        Gateway            Flags     Netif Expire"]
    names = ifconfig(root, "-l").stdout.split()
    vtnet0, lo0 = f"link#{names.index('vtnet0') + 1}", f"link#{names.index('lo0') + 1}"
    assert f"198.18.99.0/24     {vtnet0:18} U        vtnet0" in lines
    assert f"198.18.99.2        {vtnet0:18} UHS         lo0" in lines
    assert f"127.0.0.1          {lo0:18} UH          lo0" in lines
    both = root.run("/usr/bin/netstat", "-rn").stdout
    assert "\nInternet6:\n" in both and "::1" in both
