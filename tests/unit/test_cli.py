"""`python -m torjail check` and `render`, end to end through their command line."""

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from torjail.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "torjail", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_check_accepts_the_example_inventory():
    result = run("check", "inventory.py")
    assert result.returncode == 0, result.stderr
    assert "relay1.example.org: ok" in result.stdout and "relay2.example.org: ok" in result.stdout


def test_check_rejects_bad_settings_naming_host_and_setting(tmp_path):
    inventory = tmp_path / "inventory.py"
    inventory.write_text(
        'relays = [("good.example", {"identity": "on-relay", "relay_nickname": "Good", "relay_contact": "c", "public_ipv4": "198.51.100.1"}),\n'
        '          ("bad.example", {"identity": "on-relay", "relay_nickname": "not ok!", "relay_contact": "c", "public_ipv4": "10.0.0.5"})]\n')
    result = run("check", str(inventory))
    assert result.returncode == 1
    assert "bad.example: setting 'relay_nickname': expected 1-19 letters or digits" in result.stderr
    assert "bad.example: setting 'public_ipv4': expected a public IPv4 address" in result.stderr
    assert "good.example" not in result.stderr


def test_check_reports_a_missing_inventory(tmp_path):
    result = run("check", str(tmp_path / "nope.py"))
    assert result.returncode == 1 and "inventory file not found" in result.stderr


def test_check_rejects_a_torrc_tor_refuses(tmp_path):
    """A broken template is caught by the real tor, and reported with host and path."""
    (tmp_path / "templates").mkdir()
    for template in (ROOT / "templates").iterdir():
        text = template.read_text()
        if template.name == "torrc.j2":
            text += "AccountingMaxKB 10\n"
        (tmp_path / "templates" / template.name).write_text(text)
    code = ("import sys, torjail.render as r, pathlib; r.TEMPLATE_DIR = pathlib.Path(sys.argv[1]); "
            "from torjail.__main__ import main; sys.exit(main(['check', 'inventory.py']))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "templates")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "relay1.example.org: /var/jails/tor/usr/local/etc/tor/torrc: " in result.stderr
    assert "AccountingMaxKB" in result.stderr


# (kind, the file of that kind render writes, a line its checker refuses, a fragment of the complaint)
FILE_KINDS = [
    ("torrc", "var/jails/tor/usr/local/etc/tor/torrc", "AccountingMaxKB 10", "AccountingMaxKB"),
    ("pf.conf", "etc/pf.conf", "pas all", "syntax error: unknown keyword 'pas'"),
    ("jail.conf", "etc/jail.conf.d/tor.conf", "tor { allow.nothing; }", "unknown parameter: allow.nothing"),
    ("rc.conf", "var/jails/tor/etc/rc.conf", 'x="`id`"', 'expected name="value"'),
    ("crontab", "etc/cron.d/torjail-bruteforce", "61 * * * * root true", "'61' is outside 0-59"),
]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("relay2")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["render", str(ROOT / "inventory.py"), "--host", "relay2.example.org", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("kind, path, broken, complaint", FILE_KINDS, ids=[kind for kind, *_ in FILE_KINDS])
def test_check_file_runs_the_checker_of_its_kind(rendered, tmp_path, capsys, kind, path, broken, complaint):
    """`check --file KIND` reads files as the deploy checks them: the rendered one passes, a broken line is
    refused naming its file, exit 1 (the command line itself: test_pf_checker's test_cli_exit_codes)."""
    good = rendered / path
    bad = tmp_path / "broken"
    bad.write_text(good.read_text() + broken + "\n")
    assert main(["check", "--file", kind, str(good), str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and complaint in err, err
    assert all(line.startswith(f"{bad}:") for line in err.splitlines()), err


def test_check_takes_one_inventory_or_files_of_one_kind(capsys):
    for args, message in ((["inventory.py", "inventory.py"], "one inventory, or --file KIND"),
                          (["--file", "html", "inventory.py"], "invalid choice: 'html'")):
        with pytest.raises(SystemExit) as exit:
            main(["check", *args])
        assert exit.value.code == 2 and message in capsys.readouterr().err


def test_render_writes_every_file_at_its_server_path(tmp_path):
    result = run("render", "inventory.py", "--host", "relay2.example.org", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == [
        "etc/cron.d/torjail-bruteforce",
        "etc/jail.conf.d/tor.conf",
        "etc/pf.conf",
        "usr/local/etc/pkg/repos/FreeBSD.conf",
        "var/jails/tor/etc/rc.conf",
        "var/jails/tor/etc/resolv.conf",
        "var/jails/tor/usr/local/etc/pkg/repos/FreeBSD.conf",
        "var/jails/tor/usr/local/etc/tor/tor-exit-notice.html",
        "var/jails/tor/usr/local/etc/tor/torrc",
        "var/jails/tor/var/unbound/unbound.conf",
    ]
    assert 'ext_if = "igb0"' in (tmp_path / "etc/pf.conf").read_text()
    assert "ExitRelay 1" in (tmp_path / "var/jails/tor/usr/local/etc/tor/torrc").read_text()


def test_render_with_detected_interface_says_what_it_previewed(tmp_path):
    result = run("render", "inventory.py", "--host", "relay1.example.org", "--out", str(tmp_path))
    assert result.returncode == 0
    assert "ext_if is 'detect': previewed with vtnet0" in result.stderr
    result = run("render", "inventory.py", "--host", "relay1.example.org", "--out", str(tmp_path), "--ext-if", "em0")
    assert 'ext_if = "em0"' in (tmp_path / "etc/pf.conf").read_text()


def test_render_unknown_host(tmp_path):
    result = run("render", "inventory.py", "--host", "nope", "--out", str(tmp_path))
    assert result.returncode == 2 and "relay1.example.org" in result.stderr
    assert not any(tmp_path.iterdir())


def test_check_names_the_setting_of_an_exit_policy_tor_refuses(tmp_path):
    """`accept *:70000` is refused by the settings loader, naming host and setting, before any file is made."""
    inventory = tmp_path / "inventory.py"
    inventory.write_text(
        'relays = [("exit.example", {"identity": "on-relay", "relay_nickname": "Exit", "relay_contact": "c", "public_ipv4": "198.51.100.1",\n'
        '                            "exit_relay": True, "exit_policy": ["accept *:70000", "reject *:*"]})]\n')
    result = run("check", str(inventory))
    assert result.returncode == 1
    assert result.stderr.startswith("exit.example: setting 'exit_policy': expected ports")
    assert "torrc" not in result.stderr


def test_torrc_complaints_name_the_setting_they_are_about():
    """tor speaks of options and quoted values; check maps them back to the operator's settings."""
    from torjail.__main__ import file_problems
    from torjail.render import GeneratedFile

    torrc = ("Nickname A\nContactInfo x\nAddress 198.51.100.7\nORPort 198.51.100.7:9001 NoListen\n"
             "ORPort 10.0.0.1:9001 NoAdvertise\nSocksPort 0\nExitRelay 1\nExitPolicy accept *:70000\n")
    problems = file_problems("relay9", GeneratedFile("/usr/local/etc/tor/torrc", "torrc", "torrc.j2", torrc))
    assert "relay9: setting 'exit_policy': /usr/local/etc/tor/torrc: Malformed policy 'accept *:70000'. " \
           "Discarding entire policy list." in problems
    assert all(p.startswith("relay9: ") for p in problems)


def test_render_refuses_detect_as_the_interface(tmp_path):
    """`--ext-if detect` would write the word into pf.conf: a preview needs a real interface name."""
    result = run("render", "inventory.py", "--host", "relay1.example.org", "--out", str(tmp_path), "--ext-if", "detect")
    assert result.returncode == 2
    assert "argument --ext-if: expected an interface name like vtnet0" in result.stderr
    assert "a preview needs the name" in result.stderr
    assert not any(tmp_path.iterdir())
    result = run("render", "inventory.py", "--host", "relay1.example.org", "--out", str(tmp_path), "--ext-if", "em 0")
    assert result.returncode == 2 and not any(tmp_path.iterdir())
