"""The lab's resident command server (lab/freebsd/commandd.py, lab/freebsd/labcmd.c): a served command behaves as
the same command run in its own interpreter (output, exit status, signals, the caller's streams, directory, umask
and environment), and the server shows nowhere a FreeBSD host would not show it."""

import shlex

import pytest

pytestmark = pytest.mark.lab

DIRECT = "/usr/libexec/lab/bin/python3 -IS"
# The server's mark, spelled so that the shell command looking for it does not carry it.
FIND_SERVER = ('m=lab-comm; m=${m}andd; n=0; for d in /proc/[0-9]*; do tr "\\000" " " < "$d/cmdline" 2>/dev/null | '
               'grep -q -e "$m" && n=$((n + 1)); done; echo "servers=$n"')

# A FIFO that a served command blocks on, in a directory of its own (the session's lab host is shared).
FIFO = "rm -rf /tmp/served && mkdir /tmp/served && cd /tmp/served && /usr/libexec/lab/bin/mkfifo fifo"
# (served command line, the same command's path) pairs: each runs served, then in its own interpreter.
SAME_RESULT = [
    ("sysctl -n kern.ostype kern.osrelease", "/sbin/sysctl"),
    ("sysctl -n no.such.oid", "/sbin/sysctl"),
    ("sysctl -q", "/sbin/sysctl"),
    ("stat -f '%N %Lp %Su' /etc/rc.conf /nonexistent", "/usr/bin/stat"),
    ("uname -a", "/usr/bin/uname"),
    ("kldstat", "/sbin/kldstat"),
    ("mount -p", "/sbin/mount"),
    ("jls -n", "/usr/sbin/jls"),
    ("ifconfig lo0", "/sbin/ifconfig"),
    ("date -u -r 86400 +%Y-%m-%d", "/bin/date"),
    ("sha256 -s abc", "/sbin/sha256"),
    ("ps -p 1 -o pid= -o user= -o comm=", "/bin/ps"),
    ("ps -o nosuchkeyword", "/bin/ps"),
]


def _direct(command, path):
    """The same command line with its program run by the lab's Python itself, as labcmd's fallback runs it."""
    words = shlex.split(command)
    return " ".join([DIRECT, path, *(shlex.quote(word) for word in words[1:])])


def test_a_served_command_starts_through_labcmd_and_shows_as_itself(lab_run):
    status, out, err = lab_run("head -n 1 /sbin/sysctl /usr/bin/stat /bin/ps /usr/bin/lockf; " + FIFO + " && "
                               "{ md5 fifo & p=$!; sleep 0.5; "
                               "tr '\\000' ' ' < /proc/$p/cmdline; echo; ps -o command= -p $p; ps -ax -o command; "
                               "kill $p; wait $p; }; " + FIND_SERVER + "; rm -r /tmp/served")
    assert status == 0, err
    lines = out.splitlines()
    assert "#!/usr/libexec/lab/bin/labcmd commands sysctl" in lines
    assert "#!/usr/libexec/lab/bin/labcmd userland stat" in lines
    assert "#!/usr/libexec/lab/bin/labcmd userland ps" in lines  # and shows itself once, as the caller
    assert "#!/usr/libexec/lab/bin/python3 -IS" in lines  # lockf holds its lock for its child: not served
    assert "/usr/libexec/lab/bin/labcmd userland md5 /sbin/md5 fifo " in lines
    assert lines.count("/sbin/md5 fifo") == 2  # ps -p and ps -ax: as FreeBSD's ps shows md5, once
    assert lines.count("/bin/ps -ax -o command") == 1  # a served ps lists itself once, as the caller
    assert not any("commandd" in line for line in lines if not line.startswith("servers="))
    assert "servers=1" in lines  # the server, and no child of it left


@pytest.mark.parametrize("command, path", SAME_RESULT, ids=[command.split()[0] for command, _ in SAME_RESULT])
def test_a_served_command_prints_and_exits_as_in_its_own_interpreter(lab_run, command, path):
    served = lab_run(command)
    direct = lab_run(_direct(command, path))
    assert served == direct


def test_the_callers_stdin_directory_umask_and_environment_are_the_commands(lab_run):
    status, out, err = lab_run("cd /etc && stat -f %N rc.conf; printf 'abc\\n' | sed s/b/X/; "
                               "umask 077; sed -n 1p /etc/rc.conf > /tmp/umasked; stat -f %Lp /tmp/umasked; "
                               "TZ=UTC date -r 0 +%H; TZ=Asia/Tokyo date -r 0 +%H")
    assert status == 0, err
    assert out.split() == ["rc.conf", "aXc", "600", "00", "09"]


def test_signals_reach_the_command_and_it_ends_as_the_signal_ends_it(lab_run):
    script = (FIFO + "; "
              "md5 fifo & p=$!; sleep 0.5; kill -TERM $p; wait $p; echo term=$?; "
              "md5 fifo & p=$!; sleep 0.5; kill -HUP $p; wait $p; echo hup=$?; "
              "md5 fifo & p=$!; sleep 0.5; kill -KILL $p; wait $p; echo kill=$?; sleep 0.5; " + FIND_SERVER +
              "; rm -r /tmp/served")
    status, out, err = lab_run(script)
    assert status == 0, err
    lines = out.splitlines()
    assert "term=143" in lines
    assert "hup=129" in lines
    assert "kill=137" in lines
    assert "servers=1" in lines  # a caller killed outright takes its command with it


def test_a_closed_stream_a_lab_variable_or_another_user_runs_the_command_in_its_own_interpreter(lab_run):
    status, out, err = lab_run("sysctl -n kern.ostype <&-; su -m nobody -c 'stat -f %Su /etc/rc.conf'")
    assert (status, out.split()) == (0, ["FreeBSD", "root"]), err
    redirect = "LAB_TOOLS_DIR=/nonexistent/tools"
    served = lab_run(f"{redirect} ifconfig lo0")
    assert served == lab_run(f"{redirect} {DIRECT} /sbin/ifconfig lo0")
    assert served != lab_run("ifconfig lo0")  # the variable counts: the comparison can fail
