"""The BSD userland of a lab host, over real SSH: where FreeBSD's tools differ from GNU's, FreeBSD's wins."""

import hashlib
import re

import pytest
from pyinfra.facts.files import Directory, File, Link

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def sample(lab_run):
    """A file, a directory and a symbolic link with known owner, mode and size."""
    status, _, err = lab_run("rm -rf /tmp/ul && mkdir /tmp/ul && printf 'abc\\n' > /tmp/ul/f && chmod 640 /tmp/ul/f "
                             "&& chown root:operator /tmp/ul/f 2>/dev/null || chown root:wheel /tmp/ul/f; "
                             "mkdir -m 750 /tmp/ul/d && ln -s f /tmp/ul/l")
    assert status == 0, err
    return "/tmp/ul"


def test_uname_says_freebsd_14(lab_host, lab_run):
    status, out, _ = lab_run("uname; uname -s; uname -r; uname -m; uname -n; uname -o; uname -K")
    assert out.splitlines() == ["FreeBSD", "FreeBSD", "14.3-RELEASE-p4", "amd64", lab_host.name, "FreeBSD", "1403000"]
    status, out, _ = lab_run("uname -a")
    assert re.fullmatch(rf"FreeBSD {lab_host.name} 14\.3-RELEASE-p4 FreeBSD 14\.3-RELEASE-p4 \S+ amd64\n", out)
    status, out, err = lab_run("uname -z")
    assert (status, out) == (1, "")
    assert err == "uname: illegal option -- z\nusage: uname [-abiKmnoprsUv]\n"


def test_freebsd_version(lab_run):
    status, out, _ = lab_run("freebsd-version; freebsd-version -ku; freebsd-version -r")
    assert out.splitlines() == ["14.3-RELEASE-p4"] * 4


def test_stat_speaks_bsd_formats(sample, lab_run):
    status, out, err = lab_run(f"cd {sample} && stat -f '%Su %Sg %Sp %Lp %z %N%SY %HT' f d l")
    assert status == 0, err
    lines = out.splitlines()
    assert re.fullmatch(r"root \w+ -rw-r----- 640 4 f Regular File", lines[0])
    assert re.fullmatch(r"root wheel drwxr-x--- 750 \d+ d Directory", lines[1])
    assert re.fullmatch(r"root wheel lrwxrwxrwx 777 1 l -> f Symbolic Link", lines[2])
    status, out, _ = lab_run(f"cd {sample} && stat -L -f '%HT %z' l; stat -f %Y l; stat -f '%m' f; date -r f +%s")
    follow, target, mtime, date_mtime = out.splitlines()
    assert (follow, target) == ("Regular File 4", "f")
    assert mtime == date_mtime and mtime.isdigit()


def test_stat_refuses_gnu_c(sample, lab_run):
    status, out, err = lab_run(f"stat -c %U {sample}/f")
    assert (status, out) == (1, "")
    assert err.splitlines()[0] == "stat: illegal option -- c"
    assert err.splitlines()[1].startswith("usage: stat ")
    status, _, err = lab_run("stat -f %N /no/such/file")
    assert status == 1 and err == "stat: /no/such/file: No such file or directory\n"


@pytest.mark.parametrize("fact, name, expected_type", [(File, "f", dict), (Directory, "d", dict), (Link, "l", dict),
                                                       (File, "d", bool), (Directory, "f", bool)])
def test_pyinfra_file_facts_work(sample, lab_run, fact, name, expected_type):
    command = fact().command(f"{sample}/{name}").get_raw_value()
    status, out, err = lab_run(command)
    assert status == 0, err
    result = fact().process(out.splitlines())
    assert isinstance(result, expected_type), (out, result)
    if fact is File and expected_type is dict:
        assert (result["user"], result["mode"], result["size"]) == ("root", 640, 4)
    if fact is Link:
        assert result["link_target"] == "f"
    if fact is Directory and expected_type is dict:
        assert result["mode"] == 750


def test_sed_i_takes_a_suffix(lab_run):
    status, out, err = lab_run("cd /tmp && printf 'a\\n' > s1 && sed -i '' -e s/a/b/ s1 && cat s1 && ls s1*")
    assert (status, out) == (0, "b\ns1\n"), err
    status, out, err = lab_run("cd /tmp && printf 'a\\n' > s2 && sed -i.bak s/a/c/ s2 && cat s2 s2.bak")
    assert (status, out) == (0, "c\na\n"), err
    status, out, err = lab_run("cd /tmp && printf 'a\\n' > f && sed -i 's/a/b/' f; echo $?; cat f; ls f?* 2>/dev/null")
    assert out == "1\na\n"
    assert err == 'sed: 1: "f": invalid command code f\n'
    status, _, err = lab_run("sed --version")
    assert status == 1 and "illegal option" in err


def test_date_has_no_d_but_r_and_j_f(lab_run):
    status, out, _ = lab_run("date -u -r 0; date -u -j -f %Y-%m-%d 2024-02-29 +%Y%m%d; date -u -r 86400 -v+1d +%F")
    assert out.splitlines() == ["Thu Jan  1 00:00:00 UTC 1970", "20240229", "1970-01-03"]
    status, out, err = lab_run("date -d now")
    assert (status, out) == (1, "")
    assert err.startswith("date: illegal option -- d\nusage: date ")


def test_grep_has_no_p(lab_run):
    status, out, err = lab_run("printf 'ab\\ncd\\n' | grep -P 'a'")
    assert (status, out) == (2, "")
    assert err.startswith("grep: illegal option -- P\nusage: grep ")
    status, out, _ = lab_run("printf 'ab\\ncd\\nef\\n' | grep -E 'a|c'; printf 'x\\n' | egrep -c 'x|y'")
    assert out == "ab\ncd\n1\n"


def test_ps_takes_bsd_options(lab_run):
    status, out, err = lab_run("ps -ax -o pid,user,command")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["PID", "USER", "COMMAND"]
    assert lines[1].split()[:3] == ["1", "root", "/sbin/init"]
    assert any(line.split()[2:3] == ["sshd:"] for line in lines[1:])
    status, out, _ = lab_run("ps -p 1 -o pid= -o comm=")
    assert out.split()[0] == "1"
    status, out, _ = lab_run("ps -auxww | head -1")
    assert out.split() == ["USER", "PID", "%CPU", "%MEM", "VSZ", "RSS", "TT", "STAT", "STARTED", "TIME", "COMMAND"]
    status, _, err = lab_run("ps -o nosuchkeyword")
    assert status == 1 and "nosuchkeyword: keyword not found" in err


def test_ps_takes_its_first_options_without_a_dash(lab_run):
    status, out, err = lab_run("ps ax")
    assert status == 0, err
    assert out.splitlines()[0].split() == ["PID", "TT", "STAT", "TIME", "COMMAND"]
    assert out.splitlines()[1].split()[0] == "1" and out.splitlines()[1].split()[4:] == ["/sbin/init"]
    status, out, err = lab_run("ps auxww | head -1; ps axo pid=,comm= 1; ps -ax -o user,comm")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["USER", "PID"]
    assert lines[1].split() == ["1", "init"]
    assert lines[2].split() == ["USER", "COMMAND"] and ["root", "init"] in [line.split() for line in lines[3:]]
    assert not any("python" in line for line in lines), out


def test_sha256_md5_q_and_sum_names(lab_run):
    status, out, err = lab_run("printf 'abc' > /tmp/h; sha256 /tmp/h; sha256 -q /tmp/h; sha1 -q /tmp/h; md5 -q /tmp/h; "
                               "sha256sum /tmp/h; md5 -s ''")
    assert status == 0, err
    digest = hashlib.sha256(b"abc").hexdigest()
    assert out.splitlines() == [f"SHA256 (/tmp/h) = {digest}", digest, hashlib.sha1(b"abc").hexdigest(),
                                hashlib.md5(b"abc").hexdigest(), f"{digest}  /tmp/h",
                                'MD5 ("") = d41d8cd98f00b204e9800998ecf8427e']


def test_pw_adds_and_shows_accounts(lab_run):
    lab_run("pw userdel pwtest; pw groupdel pwtest")
    status, _, err = lab_run("pw useradd pwtest -u 1234 -c 'Test user' -d /nonexistent -s /usr/sbin/nologin")
    assert status == 0, err
    status, out, _ = lab_run("pw usershow pwtest; pw groupshow pwtest")
    assert out.splitlines() == ["pwtest:*:1234:1234::0:0:Test user:/nonexistent:/usr/sbin/nologin", "pwtest:*:1234:"]
    status, _, err = lab_run("pw useradd pwtest")
    assert (status, err) == (65, "pw: user 'pwtest' already exists\n")
    status, _, err = lab_run("pw usershow nosuchuser")
    assert (status, err) == (67, "pw: no such user `nosuchuser'\n")
    assert lab_run("pw userdel pwtest")[0] == 0


def test_tar_with_xz_and_su(lab_run):
    status, out, err = lab_run("cd /tmp && tar -cJf t.txz -C /etc rc.conf && tar -tJf t.txz && su -m root -c 'id -un'")
    assert (status, out) == (0, "rc.conf\nroot\n"), err


def test_rc_d_runs_in_rcorder_order(lab_run):
    status, out, err = lab_run("rcorder /etc/rc.d/*")
    order = [line.rsplit("/", 1)[1] for line in out.splitlines()]
    assert order.index("FILESYSTEMS") < order.index("netif") < order.index("NETWORKING") < order.index("sshd")
    assert order.index("cleanvar") < order.index("FILESYSTEMS") and order.index("pf") < order.index("jail")
    status, out, _ = lab_run("service sshd status 2>/dev/null || /etc/rc.d/sshd status")
    assert status == 0 and out.startswith("sshd is running as pid ")


def test_tar_unlink_extracts_over_a_partly_extracted_tree(lab_run):
    """bsdtar -U replaces existing files and keeps existing directories (an interrupted unpack can be redone)."""
    status, out, err = lab_run(
        "rm -rf /tmp/tx && mkdir -p /tmp/tx/src/a/b /tmp/tx/dst/a/b && echo new > /tmp/tx/src/a/b/f && "
        "tar -C /tmp/tx/src -cf /tmp/tx/a.tar . && echo old > /tmp/tx/dst/a/b/f && echo kept > /tmp/tx/dst/a/b/k && "
        "tar -x -f /tmp/tx/a.tar -C /tmp/tx/dst --unlink && tar -xUf /tmp/tx/a.tar -C /tmp/tx/dst && "
        "cat /tmp/tx/dst/a/b/f /tmp/tx/dst/a/b/k")
    assert (status, out) == (0, "new\nkept\n"), err
