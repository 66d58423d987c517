"""local-unbound on the session lab host, as FreeBSD's base has it: the real unbound daemon behind FreeBSD's names,
rc.d/local_unbound (setup only while the configuration is missing, the trust anchor fetched as the unbound user,
a wait for the control socket after start), local-unbound-setup's files, and su(1) as rc.d/local_unbound uses it."""

import pytest

pytestmark = pytest.mark.lab

CONF = "/var/unbound/unbound.conf"
# A configuration of our own (no local-unbound-setup): it must be used as it is.
OWN_CONF = """server:
	username: unbound
	directory: /var/unbound
	chroot: /var/unbound
	pidfile: /var/run/local_unbound.pid
	auto-trust-anchor-file: /var/unbound/root.key
	interface: 127.0.0.1
	local-data: "lab.example. A 192.0.2.7"
remote-control:
	control-enable: yes
	control-interface: /var/run/local_unbound.ctl
	control-use-cert: no
"""
RESET = ("service local_unbound onestop >/dev/null 2>&1; rm -rf /var/unbound/* /var/backups/resolv.conf.* "
         "/etc/resolvconf.conf; sysrc -x local_unbound_enable >/dev/null 2>&1; "
         "[ -f /tmp/resolv.conf.lab ] && cp /tmp/resolv.conf.lab /etc/resolv.conf; true")


@pytest.fixture
def clean(lab_run):
    lab_run("[ -f /tmp/resolv.conf.lab ] || cp /etc/resolv.conf /tmp/resolv.conf.lab")
    yield lab_run
    lab_run(RESET, timeout=60)


def test_base_has_local_unbound_at_freebsd_paths_and_the_unbound_user(lab_run):
    status, output, err = lab_run(
        "ls /usr/sbin/local-unbound /usr/sbin/local-unbound-anchor /usr/sbin/local-unbound-checkconf "
        "/usr/sbin/local-unbound-control /usr/sbin/local-unbound-setup /etc/rc.d/local_unbound /usr/bin/drill && "
        "id unbound && stat -f '%Su:%Sg %Lp' /var/unbound && grep '^unbound:' /etc/passwd && "
        "sysrc -n local_unbound_enable local_unbound_tls && "
        "for p in /usr/sbin/unbound /usr/sbin/unbound-control /etc/unbound /var/lib/unbound; do "
        "[ -e $p ] && echo present $p; done; true")
    assert status == 0, err
    assert "uid=59(unbound) gid=59(unbound) groups=59(unbound)" in output
    assert "unbound:unbound 755" in output
    assert "unbound:x:59:59:Unbound DNS Resolver:/var/unbound:/usr/sbin/nologin" in output
    assert "NO\nNO\n" in output  # /etc/defaults/rc.conf: local_unbound_enable and local_unbound_tls
    assert "present" not in output  # Debian's names and places are not on a FreeBSD host


def test_not_enabled_it_refuses_to_start(clean):
    status, output, err = clean("service local_unbound start; service local_unbound onestatus; echo status=$?")
    assert "Cannot 'start' local_unbound. Set local_unbound_enable to YES" in output + err
    assert output.splitlines()[-2:] == ["local_unbound is not running.", "status=1"], output + err


def test_start_without_a_configuration_runs_setup_and_points_resolv_conf_at_it(clean):
    status, output, err = clean("sysrc local_unbound_enable=YES >/dev/null && service local_unbound start && "
                                "service local_unbound status && cat /var/unbound/unbound.conf /etc/resolv.conf",
                                timeout=120)
    assert status == 0, output + err
    assert "Performing initial setup.\ndestination: \nExtracting forwarders from /etc/resolv.conf.\n" in output
    assert "/var/unbound/unbound.conf created" in output
    assert "Starting local_unbound.\nWaiting for nameserver to start... good" in output
    assert "local_unbound is running as pid " in output
    assert "\tchroot: /var/unbound\n" in output and "include: /var/unbound/forward.conf" in output
    assert "nameserver 127.0.0.1\noptions edns0\n" in output
    assert "is not set properly" not in err


def test_an_existing_configuration_is_used_as_it_is(clean):
    """No setup while local_unbound_config exists: the daemon reads the operator's file (local-data answered)."""
    status, output, err = clean(f"cat > {CONF} && sysrc local_unbound_enable=YES >/dev/null && "
                                "service local_unbound start && drill @127.0.0.1 lab.example A && ls /var/unbound && "
                                "ps -ax -o user,command | grep '[l]ocal-unbound -c'", input=OWN_CONF, timeout=120)
    assert status == 0, output + err
    assert "Performing initial setup." not in output
    assert "192.0.2.7" in output.split("ANSWER SECTION:")[1]
    assert "root.key\nunbound.conf\n" in output  # the anchor was fetched (built in: no network), nothing else
    assert "unbound /usr/sbin/local-unbound -c /var/unbound/unbound.conf" in output
    status, output, err = clean("service local_unbound configtest && service local_unbound reload && "
                                "local-unbound-control status")
    assert status == 0, output + err
    assert "unbound-checkconf: no errors in /var/unbound/unbound.conf" in output
    assert "is running" in output


def test_a_broken_configuration_fails_configtest_and_reload(clean):
    status, output, err = clean(f"cat > {CONF} && sysrc local_unbound_enable=YES >/dev/null && "
                                "service local_unbound start >/dev/null && echo 'server: nonsense-option: 1' >> "
                                f"{CONF} && service local_unbound reload; echo status=$?", input=OWN_CONF, timeout=120)
    assert output.splitlines()[-1] == "status=1", output + err
    assert "error" in err


def test_local_unbound_setup_recursing_and_refusing_an_unknown_option(clean):
    status, output, err = clean("local-unbound-setup -n none; echo status=$?; cat /var/unbound/unbound.conf; "
                                "local-unbound-setup -O /x; echo status=$?")
    assert "Forwarding disabled, unbound will recurse." in output
    assert "status=0" in output and "include: /var/unbound/forward.conf" not in output
    assert output.splitlines()[-1] == "status=1"
    assert "Illegal option -O" in err and "usage: local-unbound-setup [options] [forwarder ...]" in err


def test_su_m_runs_root_shell_as_a_nologin_user(lab_run):
    """FreeBSD's su -m keeps the caller's shell: rc.d/local_unbound's `echo CMD | su -m unbound` works although
    unbound's shell is nologin (Debian's su would run nologin)."""
    status, output, err = lab_run("echo 'id -un; echo $HOME' | env -i PATH=/bin:/usr/bin HOME=/ su -m unbound; "
                                  "su unbound -c x; echo status=$?")
    assert output.splitlines()[:2] == ["unbound", "/"], output + err
    assert output.splitlines()[-1] == "status=1"
