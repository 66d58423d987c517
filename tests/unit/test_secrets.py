"""The GELI passphrase sources: environment variable, command, prompt; never printed by accident."""

import sys

import pytest

from torjail import secrets
from torjail.settings import build_settings

BASE = {"identity": "on-relay", "relay_nickname": "R", "relay_contact": "c", "public_ipv4": "198.51.100.7"}


@pytest.fixture(autouse=True)
def no_cache():
    secrets._CACHE.clear()
    yield
    secrets._CACHE.clear()


def test_environment_variable_named_in_settings():
    settings = build_settings("r1", {**BASE, "geli_passphrase_env": "MY_PASS"})
    secret = secrets.geli_passphrase(settings, environ={"MY_PASS": "correct horse\n"}, interactive=False)
    assert secret.unmask() == "correct horse"
    assert "correct" not in repr(secret) and "correct" not in str(secret) and "correct" not in f"{secret}"


def test_command_source(tmp_path):
    settings = build_settings("r1", {**BASE, "geli_passphrase_command": [sys.executable, "-c", "print('from-cmd')"]})
    assert secrets.geli_passphrase(settings, environ={}, interactive=False).unmask() == "from-cmd"


def test_failing_command_names_host_not_secret():
    settings = build_settings("r1", {**BASE, "geli_passphrase_command": [sys.executable, "-c",
                                                                          "print('leak'); raise SystemExit(3)"]})
    with pytest.raises(secrets.PassphraseError) as caught:
        secrets.geli_passphrase(settings, environ={}, interactive=False)
    assert "r1:" in str(caught.value) and "exited 3" in str(caught.value) and "leak" not in str(caught.value)


def test_no_source_without_terminal_is_a_clear_error():
    settings = build_settings("r1", BASE)
    with pytest.raises(secrets.PassphraseError, match="r1: no GELI passphrase: set the environment variable "
                                                      "TORJAIL_GELI_PASSPHRASE"):
        secrets.geli_passphrase(settings, environ={}, interactive=False)


@pytest.mark.parametrize("value", ["\n", "two\nlines"])
def test_empty_or_multiline_passphrase_refused(value):
    settings = build_settings("r1", BASE)
    with pytest.raises(secrets.PassphraseError, match="r1: the GELI passphrase from environment variable"):
        secrets.geli_passphrase(settings, environ={"TORJAIL_GELI_PASSPHRASE": value}, interactive=False)


JAILS = [{"kind": "relay", "jail_name": "tor", "jail_ip": "10.0.0.1", "md_unit": 10, "relay_nickname": "A"},
         {"kind": "relay", "jail_name": "tor2", "jail_ip": "10.0.0.2", "md_unit": 11, "relay_nickname": "B",
          "or_port": 9002, "dir_port": 0}]
FLEET = {"family": "f", "age_recipient": "age19s9uupdwtthy8lqxy2uefcjzyrffx9wu0dmfxjec8dzjnehea38q7hxyad"}


def _host(*jails):
    data = {**{key: value for key, value in BASE.items() if key != "relay_nickname"}, **FLEET, "jails": list(jails)}
    return build_settings("multi", data)


def test_one_prompt_for_the_relays_of_a_host_that_share_its_passphrase_settings(monkeypatch):
    prompts = []
    monkeypatch.setattr(secrets.getpass, "getpass", lambda text: prompts.append(text) or "one for all")
    first, second = _host(*JAILS).relays
    assert secrets.geli_passphrase(first, environ={}, interactive=True).unmask() == "one for all"
    assert secrets.geli_passphrase(second, environ={}, interactive=True).unmask() == "one for all"
    assert prompts == ["GELI passphrase for multi: "]


def test_a_jail_with_its_own_passphrase_source_gets_its_own_prompt(monkeypatch):
    answers = iter(["host's", "tor2's"])
    prompts = []
    monkeypatch.setattr(secrets.getpass, "getpass", lambda text: prompts.append(text) or next(answers))
    first, second = _host(JAILS[0], {**JAILS[1], "geli_passphrase_env": "TOR2_PASS"}).relays
    assert secrets.geli_passphrase(first, environ={}, interactive=True).unmask() == "host's"
    assert secrets.geli_passphrase(second, environ={}, interactive=True).unmask() == "tor2's"
    assert prompts == ["GELI passphrase for multi: ", "GELI passphrase for multi/tor2: "]
    assert secrets.geli_passphrase(second, environ={"TOR2_PASS": "x"}, interactive=False).unmask() == "tor2's"
