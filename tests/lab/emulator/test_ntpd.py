"""ntpd on the session lab host, as FreeBSD's rc.d/ntpd runs it: off by default, started as the ntpd user with
its pid file under /var/db/ntp, -g while ntpd_sync_on_start is YES, stopped by its rc.d script."""

import pytest

pytestmark = pytest.mark.lab


def test_ntpd_off_by_default_and_started_by_rc_d_as_its_user(lab_run):
    status, output, err = lab_run("sysrc -n ntpd_enable; service ntpd status; echo status=$?")
    assert status == 0, err
    assert output.splitlines()[0] == "NO" and output.splitlines()[-1] == "status=1"
    status, output, err = lab_run(
        "sysrc ntpd_enable=YES ntpd_sync_on_start=YES >/dev/null && service ntpd start && service ntpd status && "
        "ps -axo user,args | grep '[n]tpd -g'", timeout=60)
    try:
        assert status == 0, err
        lines = output.splitlines()
        assert lines[0] == "Starting ntpd."
        assert lines[1].startswith("ntpd is running as pid ")
        user, *args = lines[2].split()
        assert user == "ntpd"
        assert "-g -c /etc/ntp.conf -u ntpd:ntpd -p /var/db/ntp/ntpd.pid -f /var/db/ntp/ntpd.drift" in " ".join(args)
    finally:
        status, output, err = lab_run("service ntpd stop; sysrc ntpd_enable=NO ntpd_sync_on_start=NO >/dev/null; "
                                      "service ntpd onestatus; echo status=$?", timeout=60)
    assert output.splitlines()[-1] == "status=1", output + err


def test_ntpd_refuses_an_unknown_option(lab_run):
    status, output, err = lab_run("/usr/sbin/ntpd -Z")
    assert status == 1 and output == ""
    assert err.splitlines()[0] == "ntpd: illegal option -- Z"
