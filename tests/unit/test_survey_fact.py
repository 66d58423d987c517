"""The Survey fact (torjail.freebsd.readings): several facts' commands in one shell script, run here by a real
sh, and its output split back into each fact's reading; what failed is left to be read alone."""

import subprocess

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError

from torjail.freebsd.readings import Questions, Survey


class Lines(FactBase):
    def command(self, text):
        return f"printf '{text}'"

    def process(self, output):
        return list(output)


class Empty(FactBase):
    command = "true"

    @staticmethod
    def default():
        return {"nothing": True}


class Failing(FactBase):
    command = "echo partial; exit 3"


class Missing(FactBase):
    command = "echo never"
    requires_command = "torjail-no-such-command"


class Unreadable(FactBase):
    command = "echo garbage"

    def process(self, output):
        raise FactProcessError("cannot read garbage")


def surveyed(questions):
    fact = Survey()
    script = fact.command(Questions(questions)).get_raw_value()
    run = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    return fact.process(run.stdout.splitlines())


def test_each_fact_gets_its_own_lines():
    answers = surveyed([(Lines, {"text": "a\\nb\\n"}), (Lines, {"text": "c\\n"})])
    assert answers == {0: ["a", "b"], 1: ["c"]}


def test_output_without_a_final_newline_keeps_its_last_line():
    assert surveyed([(Lines, {"text": "a\\nlast"}), (Lines, {"text": "x\\n"})]) == {0: ["a", "last"], 1: ["x"]}


def test_no_output_is_the_facts_default():
    assert surveyed([(Empty, {})]) == {0: {"nothing": True}}


def test_failed_missing_and_unreadable_facts_are_left_to_be_read_alone():
    answers = surveyed([(Failing, {}), (Missing, {}), (Unreadable, {}), (Lines, {"text": "ok\\n"})])
    assert answers == {3: ["ok"]}


def test_a_line_that_looks_like_a_marker_without_the_token_is_output():
    answers = surveyed([(Lines, {"text": "torjail-survey-0 0\\n"})])
    assert answers == {0: ["torjail-survey-0 0"]}


def test_each_survey_has_its_own_token():
    first, second = Survey(), Survey()
    first.command(Questions([(Empty, {})]))
    second.command(Questions([(Empty, {})]))
    assert first.token != second.token


def test_questions_show_in_the_log_by_their_number():
    assert str(Questions([(Empty, {}), (Failing, {})])) == "2 facts"


class Counted(Lines):
    """A command that says how often it ran (the file counts), read as lines or as their number."""

    def command(self, path):
        return f"echo ran >> {path}; echo a; echo b"


class CountedLength(Counted):
    def process(self, output):
        return len(output)


def test_questions_with_the_same_command_run_it_once_and_each_reads_it_with_its_own_class(tmp_path):
    """As pyinfra's File and Directory of one path: one run, two readings."""
    path = tmp_path / "runs"
    answers = surveyed([(Counted, {"path": path}), (Lines, {"text": "x\\n"}), (CountedLength, {"path": path})])
    assert answers == {0: ["a", "b"], 1: ["x"], 2: 2}
    assert path.read_text() == "ran\n"
