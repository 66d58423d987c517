"""The survey in deploy.py (torjail.tasks.survey), planned against a converged relay: one remote command answers
what the steps ask, its list holds nothing they do not ask, and the plan is the same as without it."""

from __future__ import annotations

from unittest import mock

from test_deploy_plan import passphrase, plan_server  # noqa: F401: the passphrase fixture, autouse

from torjail.freebsd import readings


def _run(survey_on: bool, fixture: str = "deploy_converged"):
    if survey_on:
        return plan_server(fixture)
    with mock.patch.object(readings, "survey", lambda questions: None):
        return plan_server(fixture)


def test_one_survey_takes_the_lock_and_answers_every_question():
    """The deploy lock is the survey's first question, and no fact is read one by one: not even those pyinfra's
    files operations read themselves (host.get_fact, not through torjail.freebsd.readings), since fstab and
    sysctl.conf lines already written are known from the survey's readings."""
    result = _run(True)
    assert result.fixture.surveyed[0] == ("deploylock.DeployLock", "")
    assert result.fixture.asked == []
    assert len(result.fixture.surveyed) > 40


def test_every_surveyed_question_is_one_the_steps_ask():
    """Of a converged relay or of a fresh server (whose files and directories do not exist yet)."""
    surveyed = set(_run(True).fixture.surveyed)
    asked = set(_run(False).fixture.asked) | set(_run(False, "deploy_fresh").fixture.asked)
    assert surveyed - asked == set()


def test_the_plan_is_the_same_with_and_without_the_survey():
    with_survey = _run(True)
    without = _run(False)
    assert [(op.names, op.commands, op.noops) for op in with_survey.operations] == \
        [(op.names, op.commands, op.noops) for op in without.operations]


def test_a_fresh_server_is_surveyed_with_the_lock_first_and_planned_as_without_it():
    """On a fresh server most answers go stale once the first operation changes something: the plan (taken before
    any change) is still the same, and the lock is still the first question."""
    with_survey = _run(True, "deploy_fresh")
    assert with_survey.fixture.surveyed[0] == ("deploylock.DeployLock", "")
    without = _run(False, "deploy_fresh")
    assert without.fixture.asked[0] == ("deploylock.DeployLock", "")
    assert with_survey.commands == without.commands


def test_a_root_of_the_wanted_release_needs_no_archive_and_its_sha256_is_not_read():
    """sha256 of base.txz reads the whole archive on the server: only a root still to unpack or upgrade needs it."""
    result = _run(False)
    assert ("release.VerifiedArchive", "") not in {(key, "") for key, _ in result.fixture.asked}
    assert not any(op.name.startswith("base.txz of") for op in result.operations)
    fresh = _run(False, "deploy_fresh")
    assert any(key == "release.VerifiedArchive" for key, _ in fresh.fixture.asked)
