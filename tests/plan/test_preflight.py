"""The deploy's preflight stops before any change when public_ipv4 is not an address of the external interface
(pf would redirect and translate for an address the server does not hold, every file valid and the relay dead),
or when the release's base.txz has no pinned sha256 (a forged mirror could hand over a forged userland)."""

from __future__ import annotations

import pytest
from harness import plan
from pyinfra.api.exceptions import PyinfraError
from test_deploy_plan import DEPLOY, _merge_facts, passphrase, server  # noqa: F401 (passphrase: a fixture)


def plan_fresh(data=None, **facts):
    fixture = server("deploy_fresh")
    return plan(DEPLOY, data={**fixture["data"], **(data or {})}, facts=_merge_facts(fixture["facts"], facts))


def test_public_ipv4_held_by_the_external_interface_passes():
    assert plan_fresh().changed


def test_public_ipv4_not_on_the_external_interface_stops_before_any_operation():
    with pytest.raises(PyinfraError) as stopped:
        plan_fresh(data={"public_ipv4": "198.51.100.99"})
    assert str(stopped.value) == (
        "server: setting 'public_ipv4': 198.51.100.99 is not an address of vtnet0 (it holds 203.0.113.10); pf "
        "redirects the relay's ports for that address and sends the relay's traffic from it, so it must be the "
        "server's own address on its external interface")


def test_an_external_interface_the_server_lacks_stops_before_any_operation():
    with pytest.raises(PyinfraError) as stopped:
        plan_fresh(data={"ext_if": "igb0"})
    assert str(stopped.value) == "server: setting 'ext_if': the server has no interface igb0; its interfaces are lo0, vtnet0"


def test_a_deploy_without_the_pinned_release_sha256_stops_before_any_operation():
    """base.txz is checked against the operator's pin only: without one, nothing is planned at all."""
    with pytest.raises(PyinfraError) as stopped:
        plan_fresh(data={"jail_release_sha256": None})
    assert str(stopped.value).startswith(
        "server: setting 'jail_release_sha256' is required: the SHA256 of base.txz for 14.3-RELEASE (amd64) as the "
        "release's MANIFEST lists it, taken from a source you checked yourself")
