"""End to end on a lab host: the jail's userland replaced by a newer release, and update.py.

A deploy that finds the jail root holding an older release than `jail_release` unpacks the new base.txz over it
with the jail stopped: base files come back as the release has them, while the jail's users (tor's _tor), /var
(tor's keys) and /root stay. The lab mirror serves one release, so the test makes the jail's root older itself:
its marker says 14.2-RELEASE and a base file is changed, as an older userland would differ. A symbolic link in
the root that leads to a host directory stops the unpack before anything is written, and the jail runs again.

The tests run in file order on one lab host: each step starts from the state the previous one left.
"""

import pytest

from relay import changes, relay_host

pytestmark = pytest.mark.lab

ROOT = "/var/jails/tor"
MARKER = f"{ROOT}/.torjail-base"
BASE_FILE = f"{ROOT}/etc/rc.d/ntpd"  # a file of base.txz the deploy never writes
FINGERPRINT = f"cat {ROOT}/var/db/tor/fingerprint"
PLANTED = f"{ROOT}/usr/share/planted"


@pytest.fixture(scope="module")
def relay():
    with relay_host("upd1", 60) as relay:
        yield relay


def make_older(relay):
    relay.must(f"echo 14.2-RELEASE > {MARKER} && echo '# 14.2' >> {BASE_FILE}")


def test_a_relay_is_deployed(relay):
    result = relay.pyinfra("deploy.py")
    assert result.returncode == 0, result.stdout[-5000:]
    relay.fingerprint = relay.must(FINGERPRINT)
    relay.base_file = relay.must(f"sha256 -q {BASE_FILE}")


def test_a_newer_jail_release_replaces_the_userland_and_keeps_users_and_var(relay):
    make_older(relay)
    relay.must("jexec tor touch /root/.kept")
    result = relay.pyinfra("deploy.py")
    assert result.returncode == 0, result.stdout[-5000:]
    assert "Jail userland 14.2-RELEASE -> 14.3-RELEASE" in result.stdout
    assert relay.must(f"cat {MARKER}").strip() == "14.3-RELEASE"
    assert relay.must(f"sha256 -q {BASE_FILE}") == relay.base_file
    assert relay.must(FINGERPRINT) == relay.fingerprint
    assert relay.must("jexec tor id -u _tor").strip() == "256"
    relay.must("jexec tor test -e /root/.kept")
    relay.must("jexec tor service tor onestatus")


def test_the_next_deploy_changes_nothing(relay):
    result = relay.pyinfra("deploy.py")
    assert result.returncode == 0 and changes(result.stdout) == 0, result.stdout[-5000:]


def test_a_link_out_of_the_root_stops_the_unpack_and_the_jail_runs_again(relay):
    make_older(relay)
    changed = relay.must(f"sha256 -q {BASE_FILE}")
    relay.must(f"jexec tor ln -s /etc /usr/share/planted")  # the jail's /etc to the jail, the host's to the host
    result = relay.pyinfra("deploy.py")
    assert result.returncode != 0
    assert f"{PLANTED} leads out of the jail root" in result.stdout, result.stdout[-3000:]
    assert relay.must(f"sha256 -q {BASE_FILE}") == changed  # nothing unpacked
    assert relay.must(f"cat {MARKER}").strip() == "14.2-RELEASE"
    relay.must("jexec tor service tor onestatus")
    relay.must(f"jexec tor rm /usr/share/planted")
    result = relay.pyinfra("deploy.py")
    assert result.returncode == 0, result.stdout[-5000:]
    assert relay.must(f"sha256 -q {BASE_FILE}") == relay.base_file


# ------------------------------------------------------------------ tor's log, rotated by the jail's newsyslog

LOG = "/var/log/tor/notices.log"


def test_the_jails_newsyslog_rotates_tors_log_and_tor_writes_the_new_one(relay):
    relay.must(f"jexec tor /bin/sh -c 'head -c 1100000 /dev/zero | tr \"\\000\" x >> {LOG}'")
    output = relay.must("jexec tor newsyslog -v")
    assert f"{LOG} <7J>: size (Kb): " in output and "--> trimming log...." in output, output
    relay.must(f"jexec tor test -s {LOG}.0.bz2")
    assert relay.must(f"jexec tor stat -f '%Su %Sg %Lp' {LOG}").split() == ["_tor", "_tor", "600"]
    reopened = ("i=0; while [ $i -lt 20 ]; do grep -q 'opening new log file' "
                f"{ROOT}{LOG} && exit 0; sleep 0.5; i=$((i + 1)); done; exit 1")
    assert relay.run(reopened)[0] == 0, "tor did not reopen its log after newsyslog's SIGHUP"
    assert "--> skipping" in relay.must("jexec tor newsyslog -v")


def test_newsyslog_refuses_a_malformed_entry_before_rotating_anything(relay):
    relay.must("printf '/var/log/messages root:wheel 644 7\\n' > /tmp/bad-newsyslog.conf")
    status, output, error = relay.run("newsyslog -F -f /tmp/bad-newsyslog.conf")
    assert status == 1 and "malformed line (missing fields)" in error, error


# ------------------------------------------------------------------ update.py

PUBLISHED_TOR = "/usr/libexec/lab/pkgrepo/tor"  # the lab repository's tor version, when newer than installed
TOR_VERSION = "pkg -j tor query %v tor"
TOR_PID = "jexec tor cat /var/run/tor/tor.pid"


def publish_newer_tor(relay):
    installed = relay.must(TOR_VERSION).strip()
    name, _, revision = installed.partition("_")
    newer = f"{name}_{int(revision or 0) + 1}"
    relay.must(f"mkdir -p {PUBLISHED_TOR.rsplit('/', 1)[0]} && echo {newer} > {PUBLISHED_TOR}")
    return installed, newer


def versions(relay):
    return (relay.must("freebsd-version -ku").split(), relay.must("jexec tor freebsd-version -u").strip())


def test_a_dry_run_lists_the_patches_and_the_new_tor_and_changes_nothing(relay):
    before = versions(relay)
    relay.tor = publish_newer_tor(relay)
    result = relay.pyinfra("update.py", "--dry", "--diff", yes=False)
    assert result.returncode == 0, result.stdout[-5000:]
    assert "Will update to 14.3-RELEASE-p5:" in result.stdout, result.stdout[-5000:]
    for path in ("/bin/freebsd-version", "/boot/kernel/kernel", "/lib/libcrypto.so.30"):
        assert f"updated {path}" in result.stdout
    assert result.stdout.count("updated /bin/freebsd-version") == 2  # the host and the jail
    assert f"tor {relay.tor[0]} -> {relay.tor[1]}" in result.stdout
    assert "Jail tor userland to 14.3-RELEASE-p5" in result.stdout  # the change detection's list
    assert "runs after a reboot" in result.stdout and "unlock.py" in result.stdout
    assert versions(relay) == before and relay.must(TOR_VERSION).strip() == relay.tor[0]


def test_update_patches_the_host_the_jail_and_tor(relay):
    jid = relay.must("jls -j tor jid").strip()
    result = relay.pyinfra("update.py")
    assert result.returncode == 0, result.stdout[-5000:]
    assert versions(relay) == (["14.3-RELEASE-p5", "14.3-RELEASE-p5"], "14.3-RELEASE-p5")
    assert relay.must(TOR_VERSION).strip() == relay.tor[1]
    relay.must("jexec tor service tor onestatus")
    assert relay.must("jls -j tor jid").strip() != jid, "the jail (and tor) kept running the old userland"
    assert relay.must(FINGERPRINT) == relay.fingerprint


def test_a_second_update_changes_nothing(relay):
    result = relay.pyinfra("update.py")
    assert result.returncode == 0 and changes(result.stdout) == 0, result.stdout[-5000:]


def test_a_new_tor_alone_restarts_tor_and_nothing_else(relay):
    jail_started = relay.must("jls -j tor jid").strip()
    pid = relay.must(TOR_PID).strip()
    installed, newer = publish_newer_tor(relay)
    result = relay.pyinfra("update.py")
    assert result.returncode == 0, result.stdout[-5000:]
    assert f"Jail tor packages (tor {installed} -> {newer}; tor restarts)" in result.stdout
    assert relay.must(TOR_VERSION).strip() == newer
    assert relay.must("jls -j tor jid").strip() == jail_started, "the jail was restarted for a package"
    wait = ("i=0; while [ $i -lt 20 ]; do jexec tor service tor onestatus >/dev/null 2>&1 && exit 0; sleep 0.5; "
            "i=$((i + 1)); done; exit 1")
    relay.must(wait)
    assert relay.must(TOR_PID).strip() != pid
    again = relay.pyinfra("update.py")
    assert again.returncode == 0 and changes(again.stdout) == 0, again.stdout[-5000:]
