"""The SSH host key in deploy.py, unlock.py and renew_keys.py, planned: a server presenting another key than the
recorded one, or unlock.py without a record or without SSH, stops before the server is asked anything (an empty
fixture would fail on the first fact) and before the GELI passphrase is even read; a first deploy records it."""

import logging

import pytest
from fake_ssh import SERVER_KEY, ed25519_key, server_presents
from harness import plan
from test_deploy_plan import DEPLOY, plan_server, server
from test_unlock_plan import UNLOCK, fixture

from torjail import secrets
from torjail.hostkey import HostKeyError

RENEW = DEPLOY.parent / "renew_keys.py"
OTHER_KEY = ed25519_key(7)


@pytest.fixture(autouse=True)
def passphrase(monkeypatch):
    monkeypatch.setenv("TORJAIL_GELI_PASSPHRASE", "host key plan passphrase")
    monkeypatch.setattr(secrets, "_CACHE", {})


def plan_against_nothing(deploy_file, data):
    """Plan with no fact at all: only a stop before the first question to the server gets through."""
    return plan(deploy_file, data=data, facts={})


@pytest.mark.parametrize("deploy_file, data", [(DEPLOY, lambda: server("deploy_converged")["data"]),
                                               (UNLOCK, lambda: fixture("unlock_locked")["data"]),
                                               (RENEW, lambda: server("deploy_converged")["data"])],
                         ids=["deploy", "unlock", "renew_keys"])
def test_a_changed_host_key_stops_before_anything(deploy_file, data, monkeypatch, known_server):
    server_presents(monkeypatch, OTHER_KEY)
    with pytest.raises(HostKeyError, match=r"^server: the server's SSH host key is not the one recorded at deploy "
                                           r"time"):
        plan_against_nothing(deploy_file, data())
    assert secrets._CACHE == {}
    assert known_server.read_text() == f"ssh-ed25519 {SERVER_KEY.get_base64()}\n"


def test_unlock_without_a_record_stops_before_anything(known_server):
    known_server.unlink()
    with pytest.raises(HostKeyError, match=r"^server: no SSH host key is recorded for this server"):
        plan_against_nothing(UNLOCK, fixture("unlock_locked")["data"])
    assert secrets._CACHE == {}
    assert not known_server.exists()


def test_unlock_without_an_ssh_connection_stops_before_anything(monkeypatch):
    server_presents(monkeypatch, None)
    with pytest.raises(HostKeyError, match=r"^server: the server's SSH host key cannot be checked through "
                                           r"pyinfra's SSHConnector"):
        plan_against_nothing(UNLOCK, fixture("unlock_locked")["data"])
    assert secrets._CACHE == {}


def test_first_deploy_records_the_presented_key_and_goes_on(known_server, monkeypatch):
    known_server.unlink()
    server_presents(monkeypatch, OTHER_KEY)
    result = plan_server("deploy_converged")
    assert known_server.read_text() == f"ssh-ed25519 {OTHER_KEY.get_base64()}\n"
    assert result.changed == []


def test_deploy_without_an_ssh_connection_says_so_and_goes_on(known_server, monkeypatch, caplog):
    known_server.unlink()
    server_presents(monkeypatch, None)
    caplog.set_level(logging.WARNING)
    result = plan_server("deploy_converged")
    assert "SSH host key cannot be read through pyinfra's SSHConnector: it is neither checked nor recorded" \
        in caplog.text
    assert not known_server.exists()
    assert result.changed == []
