"""Plan tests: whole deploy files planned against fake facts (see harness.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import plan  # noqa: E402

SAMPLES = Path(__file__).parent / "samples"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def plan_deploy():
    """plan(deploy_file, facts=..., data=..., fixture=...) -> Plan; see tests/plan/harness.py."""
    return plan
