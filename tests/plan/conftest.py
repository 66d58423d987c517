"""Plan tests: whole deploy files planned against fake facts (see harness.py), on a server that presents the SSH
host key recorded for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from torjail import hostkey

from fake_ssh import SERVER_KEY, server_presents
from harness import plan

SAMPLES = Path(__file__).parent / "samples"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def plan_deploy():
    """plan(deploy_file, facts=..., data=..., fixture=...) -> Plan; see tests/plan/harness.py."""
    return plan


@pytest.fixture(autouse=True)
def known_server(tmp_path, monkeypatch):
    """Every plan runs against a server presenting the host key recorded at its first deploy, in the default
    secrets_dir under a home of the test's own; returns the record's path. A test about host keys changes either."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    server_presents(monkeypatch, SERVER_KEY)
    record = tmp_path / "home/.local/share/torjail/server" / hostkey.RECORD
    record.parent.mkdir(parents=True)
    record.write_text(f"{SERVER_KEY.get_name()} {SERVER_KEY.get_base64()}\n")
    return record
