"""lockf(1) in a private root: exit statuses of sysexits(3), messages, -k, -s, -t, -n, as usr.bin/lockf/lockf.c."""

import os

import pytest

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")]

HOLD = "lockf -k /tmp/deploy.lock sleep 3 & sleep 0.5; "


@pytest.fixture(scope="module")
def root():
    from freebsd_root import PrivateRoot

    lab_root = PrivateRoot()
    yield lab_root
    lab_root.close()


def test_a_held_lock_fails_at_once_with_ex_tempfail(root):
    result = root.sh(HOLD + "lockf -t 0 /tmp/deploy.lock echo ran; echo status $?; "
                            "lockf -s -t 0 /tmp/deploy.lock echo ran; echo status $?; wait")
    assert result.stdout == "status 75\nstatus 75\n"
    assert result.stderr == "lockf: /tmp/deploy.lock: already locked\n"


def test_a_timeout_waits_for_the_holder(root):
    result = root.sh(HOLD + "lockf -k -t 10 /tmp/deploy.lock echo ran; echo status $?")
    assert result.stdout == "ran\nstatus 0\n"


def test_the_command_status_is_lockf_s_and_the_file_goes_unless_kept(root):
    result = root.sh("lockf /tmp/gone.lock sh -c 'exit 3'; echo status $?; test -e /tmp/gone.lock || echo removed; "
                     "lockf -k /tmp/kept.lock true; test -e /tmp/kept.lock && echo kept")
    assert result.stdout == "status 3\nremoved\nkept\n"


@pytest.mark.parametrize("args, status, message", [
    (["-n", "/tmp/none.lock", "true"], 69, "lockf: /tmp/none.lock: No such file or directory\n"),
    (["-t", "x", "/tmp/a.lock", "true"], 64, 'lockf: invalid timeout "x"\n'),
    (["-t", "-1", "/tmp/a.lock", "true"], 64, 'lockf: invalid timeout "-1"\n'),
    (["/tmp/a.lock"], 64, "usage: lockf [-kns] [-t seconds] file command [arguments]\n"),
    (["-x", "/tmp/a.lock", "true"], 64,
     "lockf: illegal option -- x\nusage: lockf [-kns] [-t seconds] file command [arguments]\n"),
    (["/nonexistent/dir/a.lock", "true"], 73,
     "lockf: cannot open /nonexistent/dir/a.lock: No such file or directory\n"),
])
def test_refusals(root, args, status, message):
    result = root.run("/usr/bin/lockf", *args)
    assert (result.returncode, result.stderr) == (status, message)
