"""torjail.checks.parsers: lark's tables cached in the operator's own cache directory, and only there."""

import os

from torjail.checks import parsers

GRAMMAR = r"""
    start: WORD+
    %import common.WORD
    %import common.WS
    %ignore WS
"""


def _words(parser):
    return [str(token) for token in parser.parse("cached tables").children]


def test_the_tables_are_cached_in_a_directory_only_the_operator_may_write(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _words(parsers.lalr("words", GRAMMAR)) == ["cached", "tables"]
    directory = tmp_path / "torjail"
    assert (directory / "words.lark-cache").is_file()
    assert directory.stat().st_mode & 0o777 == 0o700
    # the second parser comes from the cache and parses the same
    assert _words(parsers.lalr("words", GRAMMAR)) == ["cached", "tables"]


def test_a_cache_directory_others_may_write_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    directory = tmp_path / "torjail"
    directory.mkdir()
    os.chmod(directory, 0o777)
    assert _words(parsers.lalr("words", GRAMMAR)) == ["cached", "tables"]
    assert not (directory / "words.lark-cache").exists()


def test_no_cache_directory_means_no_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert _words(parsers.lalr("words", GRAMMAR)) == ["cached", "tables"]
