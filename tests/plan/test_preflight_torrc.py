"""The deploy's preflight checks torrc with the operator's own tor before the first change, when there is one.

The server's tor checks torrc too, but only after the operations before it (a fresh host's pool of them); a torrc
the local tor refuses stops the deploy with nothing planned.
"""

from __future__ import annotations

import logging

import pytest
from harness import plan
from pyinfra.api.exceptions import PyinfraError
from test_deploy_plan import DEPLOY, PASSPHRASE, planned_operations, server  # noqa: F401 (a fixture)

from torjail import render
from torjail.checks import torrc

TORRC = "/var/jails/tor/usr/local/etc/tor/torrc"


@pytest.fixture(autouse=True)
def passphrase(monkeypatch):
    monkeypatch.setenv("TORJAIL_GELI_PASSPHRASE", PASSPHRASE)


@pytest.fixture
def torrc_with(monkeypatch):
    """Make every rendered torrc end with the given lines (a template edited by hand)."""
    real_render_file = render.render_file

    def use(extra):
        def edited(settings, template, family=None):
            text = real_render_file(settings, template, family)
            return text + extra if template == "torrc.j2" else text

        monkeypatch.setattr(render, "render_file", edited)

    return use


def test_a_torrc_the_local_tor_refuses_stops_the_deploy_before_any_operation(torrc_with, planned_operations):
    torrc_with("RelayBandwidthRate 1 bytes\n")
    fixture = server("deploy_fresh")
    with pytest.raises(PyinfraError) as error:
        plan(DEPLOY, facts=fixture["facts"], data=fixture["data"])
    assert str(error.value).startswith(f"server: generated files are invalid, nothing was changed: "
                                       f"setting 'bandwidth_rate': {TORRC}: ")
    assert "it must be at least 76800" in str(error.value)
    assert planned_operations == []


def test_without_a_local_tor_the_deploy_goes_on_with_a_note(torrc_with, monkeypatch, caplog):
    """No tor on the operator's machine is no reason to stop: the server's tor checks torrc before it is used."""
    torrc_with("RelayBandwidthRate 1 bytes\n")

    def no_tor():
        raise torrc.TorNotFound("tor is not installed on this machine")

    monkeypatch.setattr(torrc, "tor_binary", no_tor)
    fixture = server("deploy_fresh")
    with caplog.at_level(logging.INFO, logger="pyinfra"):
        result = plan(DEPLOY, facts=fixture["facts"], data=fixture["data"])
    assert result.operations
    assert "server: note: no tor on this machine: torrc is checked by tor on the server only" in caplog.text
