"""Split a pf.conf into statements of tokens the way pfctl(8) reads it.

pfctl does not expand macros in a separate pass: its lexer (yylex in
sbin/pfctl/parse.y) replaces ``$name`` by the macro text while reading and
re-reads that text as if it were part of the file, so ``$ext_if:network`` is
one word and a macro holding ``{ 9001 9030 }`` becomes a list.  The same
lexer also decides what a number is, which words are keywords, how quotes,
comments and backslash continuations behave.  Getting any of that slightly
different would make the checker accept or reject files pfctl treats the
other way, so this module follows yylex closely (C locale, ASCII only) and
hands lark ready-made tokens, statement by statement.

Only two things are stricter than pfctl: a quoted string must end on its own
line (pfctl silently joins lines, which a generated file never needs), and a
macro value may not contain ``$`` (pfctl leaves it unexpanded and fails later
with a bare syntax error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

from lark import Token

# Every keyword pfctl's lookup() knows (FreeBSD 14).  Words not listed here
# are plain STRING tokens, exactly as in pfctl (tcp, persist, echoreq, ...).
PFCTL_KEYWORDS = frozenset("""
    all allow-opts altq anchor antispoof any bandwidth binat binat-anchor
    bitmask block block-policy bridge-to buckets cbq code codelq debug
    divert-reply divert-to dnpipe dnqueue drop dup-to ether fail-policy fairq
    fastroute file fingerprints flags floating flush for fragment from global
    group hfsc hogs hostid icmp-type icmp6-type if-bound in include inet inet6
    interval keep keepcounters l3 label limit linkshare load log loginterface
    map-e-portset match max max-mss max-src-conn max-src-conn-rate
    max-src-nodes max-src-states min-ttl modulate nat nat-anchor no no-df
    no-route no-sync on optimization os out overload pass port prio priority
    priq probability proto qlimit queue quick random random-id rdr rdr-anchor
    realtime reassemble reply-to require-order return return-icmp
    return-icmp6 return-rst ridentifier round-robin route route-to rtable rule
    ruleset-optimization scrub set set-tos skip sloppy source-hash
    source-track state state-defaults state-policy static-port sticky-address
    syncookies synproxy table tag tagged target tbrsize timeout to tos ttl
    upperlimit urpf-failed user
""".split())

PUNCTUATION = {
    "{": "LBRACE", "}": "RBRACE", "(": "LPAREN", ")": "RPAREN",
    "<": "LT", ">": "GT", "!": "BANG", "=": "EQ", ",": "COMMA",
    "/": "SLASH", "-": "MINUS",
}

# C's ispunct() in the C locale.
_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_NOT_IN_STRING = frozenset("(){}<>!=/#,")
_ENDS_NUMBER = frozenset(" \t\n\r\f\v),/}=")
_LLONG_MAX = 2**63 - 1


def keyword_type(word: str) -> str:
    """Token type of a pfctl keyword: ``icmp6-type`` -> ``ICMP6_TYPE``."""
    return word.upper().replace("-", "_")


KEYWORD_BY_TYPE = {keyword_type(word): word for word in PFCTL_KEYWORDS}


def _is_alnum(c: str | None) -> bool:
    return c is not None and c.isascii() and c.isalnum()


def _allowed_in_string(c: str | None) -> bool:
    return _is_alnum(c) or (c in _PUNCT and c not in _NOT_IN_STRING)


@dataclass
class Statement:
    """The tokens of one logical line (continuations joined), without the newline."""

    tokens: list[Token] = field(default_factory=list)
    first_line: int = 0
    last_line: int = 0
    error: tuple[int, str] | None = None  # (line, message) from the lexer


class _LexError(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class PfLexer:
    """Character reader plus yylex(); ``macros`` is read live, so a macro
    defined by one statement is visible to the next, as in pfctl."""

    def __init__(self, text: str, macros: Mapping[str, str]):
        self._text = text
        self._pos = 0
        self._line = 1
        self._macros = macros
        self._parsebuf: str | None = None  # macro text being re-read
        self._parseindex = 0
        self._pushback: list[str] = []

    # -- characters -------------------------------------------------------
    def _getc(self) -> str | None:
        if self._pos >= len(self._text):
            return None
        c = self._text[self._pos]
        self._pos += 1
        return c

    def _lgetc(self, quoted: bool = False) -> str | None:
        if self._parsebuf is not None:
            if self._parseindex < len(self._parsebuf):
                c = self._parsebuf[self._parseindex]
                self._parseindex += 1
                return c
            self._parsebuf = None
        if self._pushback:
            return self._pushback.pop()
        c = self._getc()
        if quoted:
            return c
        while c == "\\":  # backslash-newline joins lines; "\x" reads as "x"
            nxt = self._getc()
            if nxt != "\n":
                c = nxt
                break
            self._line += 1
            c = self._getc()
        return c

    def _lungetc(self, c: str | None) -> None:
        if c is None:
            return
        if self._parsebuf is not None and self._parseindex > 0:
            self._parseindex -= 1
        else:
            self._pushback.append(c)

    def _findeol(self) -> None:
        """Skip the rest of the logical line, like pfctl after a lexer error."""
        self._parsebuf = None
        while True:
            c = self._lgetc()
            if c is None:
                return
            if c == "\n":
                self._line += 1
                return

    # -- tokens -----------------------------------------------------------
    def _token(self, type_: str, value: object, line: int) -> Token:
        return Token(type_, value, line=line, end_line=line)

    def _next_token(self) -> Token | None:
        """One token, a NEWLINE token, or None at end of input."""
        while True:
            c = self._lgetc()
            while c in (" ", "\t"):
                c = self._lgetc()
            line = self._line
            if c == "#":
                while c not in ("\n", None):
                    c = self._lgetc()
                line = self._line
            if c == "$" and self._parsebuf is None:
                name = []
                while True:
                    c = self._lgetc()
                    if _is_alnum(c) or c == "_":
                        name.append(c)
                        continue
                    self._lungetc(c)
                    break
                value = self._macros.get("".join(name))
                if value is None:
                    raise _LexError(line, f"macro '{''.join(name)}' not defined")
                self._parsebuf, self._parseindex = value, 0
                continue
            break

        if c in ("'", '"'):
            return self._quoted(c, line)
        if c in ("<", ">", "-"):
            nxt = self._lgetc()
            if c + str(nxt) in ("<>", "><"):
                return self._token("PORTBINARY", c + nxt, line)
            if c + str(nxt) == "->":
                return self._token("ARROW", "->", line)
            self._lungetc(nxt)
        if c is not None and (c == "-" or c.isdigit()) and c.isascii():
            number = self._number(c, line)
            if number is not None:
                return number
            c = self._lgetc()  # not a number: re-read it as a word
            if c == "-":
                return self._token("MINUS", "-", line)
        if _is_alnum(c) or c in (":", "_"):
            word = [c]
            c = self._lgetc()
            while _allowed_in_string(c):
                word.append(c)
                c = self._lgetc()
            self._lungetc(c)
            text = "".join(word)
            if text in PFCTL_KEYWORDS:
                return self._token(keyword_type(text), text, line)
            return self._token("STRING", text, line)
        if c == "\n":
            self._line += 1
            return self._token("NEWLINE", "\n", line)
        if c is None:
            return None
        return self._token(PUNCTUATION.get(c, "CHAR"), c, line)

    def _number(self, first: str, line: int) -> Token | None:
        digits = [first]
        c = self._lgetc()
        while c is not None and c.isascii() and c.isdigit():
            digits.append(c)
            c = self._lgetc()
        self._lungetc(c)
        text = "".join(digits)
        if text != "-" and (c is None or c in _ENDS_NUMBER):
            value = int(text)
            if abs(value) > _LLONG_MAX:
                raise _LexError(line, f'"{text}" invalid number: too large')
            return self._token("NUMBER", value, line)
        for ch in reversed(digits):  # push back all, re-read as a word
            self._lungetc(ch)
        return None

    def _quoted(self, quote: str, line: int) -> Token:
        chars = []
        while True:
            c = self._lgetc(quoted=True)
            if c is None:
                raise _LexError(line, "reached end of file while parsing quoted string")
            if c == "\n":
                self._lungetc(c)
                raise _LexError(line, f"unterminated quoted string: missing closing {quote}")
            if c == "\\":
                nxt = self._lgetc(quoted=True)
                if nxt == quote:
                    c = nxt
                elif nxt == "\n":
                    self._line += 1
                    continue
                else:
                    self._lungetc(nxt)
            elif c == quote:
                return self._token("STRING", "".join(chars), line)
            chars.append(c)

    # -- statements -------------------------------------------------------
    def statements(self) -> Iterator[Statement]:
        """Yield non-empty statements.  A statement is produced before the
        next one is read, so the caller can define macros in between."""
        current = Statement()
        while True:
            try:
                token = self._next_token()
            except _LexError as exc:
                current.error = (exc.line, exc.message)
                current.first_line = current.first_line or exc.line
                current.last_line = exc.line
                self._findeol()
                yield current
                current = Statement()
                continue
            if token is None or token.type == "NEWLINE":
                if current.tokens:
                    current.last_line = token.line if token is not None else current.tokens[-1].line
                    yield current
                    current = Statement()
                if token is None:
                    return
                continue
            if not current.tokens:
                current.first_line = token.line
            current.tokens.append(token)
