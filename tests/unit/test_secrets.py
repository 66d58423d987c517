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
