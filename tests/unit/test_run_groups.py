"""tests/run_groups.py, which `make test` runs: every test it names exists (a renamed module or test would
otherwise silently join the last group, or vanish from its group), and the summary's slowest tests come from the
groups' junit XML."""

import re
from pathlib import Path

import run_groups

ROOT = Path(__file__).resolve().parents[2]


def test_every_named_module_and_test_exists():
    for group in run_groups.GROUPS:
        for entry in group:
            module, _, test = entry.partition("::")
            assert (ROOT / module).is_file(), f"run_groups names {module}, which does not exist"
            if test:
                name = re.sub(r"\[.*\]$", "", test)
                assert re.search(rf"^def {re.escape(name)}\(", (ROOT / module).read_text(), re.MULTILINE), \
                    f"run_groups names {entry}, but {module} has no test {name}"


def test_each_group_has_its_own_session_host():
    assert len(run_groups.groups()) <= len(run_groups.SESSION_INDICES)
    assert len(set(run_groups.SESSION_INDICES)) == len(run_groups.SESSION_INDICES)


def test_every_test_module_runs_in_exactly_one_group():
    modules = [entry.split("::")[0] for group in run_groups.groups() for entry in group if "::" not in entry]
    assert len(modules) == len(set(modules))
    named = {entry.split("::")[0] for group in run_groups.groups() for entry in group}
    assert named == {str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("test_*.py")}


def test_slowest_tests_come_from_every_groups_junit_xml(tmp_path):
    (tmp_path / "group0.xml").write_text(
        '<testsuites><testsuite><testcase classname="tests.a" name="test_x" time="3.5"/>'
        '<testcase classname="tests.a" name="test_y" time="0.1"/></testsuite></testsuites>')
    (tmp_path / "group1.xml").write_text(
        '<testsuites><testsuite><testcase classname="tests.b" name="test_z[p]" time="12.0"/></testsuite></testsuites>')
    (tmp_path / "group2.xml").write_text("<testsuites><testsu")  # a group stopped while writing
    assert run_groups.slowest_tests(tmp_path) == [
        (12.0, "tests.b::test_z[p]"), (3.5, "tests.a::test_x"), (0.1, "tests.a::test_y")]
