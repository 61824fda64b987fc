"""A small Spark/Databricks SQL lexer and helpers.

Only what the translations in :mod:`local_warehouse.translate` need: tokens with their
positions (so statements can be rewritten in place without re-printing them), string
literal decoding, dotted (backtick-quoted) names and top-level keyword search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class SqlSyntaxError(ValueError):
    """The statement could not be tokenized or does not have the expected shape."""


@dataclass(frozen=True)
class Token:
    kind: str  # word | qident | string | number | param | punct | ws | comment
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    def is_kw(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words

    def is_punct(self, *chars: str) -> bool:
        return self.kind == "punct" and self.text in chars


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)[A-Za-z]*")
_PARAM = re.compile(r":[A-Za-z_][A-Za-z0-9_]*")
_MULTI_OPS = ("=>", "<=>", "<=", ">=", "<>", "!=", "==", "||", "::", "->")


def tokenize(sql: str) -> list[Token]:
    """Splits ``sql`` into tokens (whitespace and comments included, positions kept)."""
    out: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            j = i
            while j < n and sql[j].isspace():
                j += 1
            out.append(Token("ws", sql[i:j], i, j))
            i = j
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(Token("comment", sql[i:j], i, j))
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            if j < 0:
                raise SqlSyntaxError("unterminated /* comment")
            out.append(Token("comment", sql[i : j + 2], i, j + 2))
            i = j + 2
        elif c in "'\"" or (c in "rR" and i + 1 < n and sql[i + 1] in "'\""):
            raw = c in "rR"
            q = sql[i + 1] if raw else c
            j = i + (2 if raw else 1)
            while j < n:
                if sql[j] == "\\" and not raw:
                    j += 2
                    continue
                if sql[j] == q:
                    break
                j += 1
            if j >= n:
                raise SqlSyntaxError("unterminated string literal")
            out.append(Token("string", sql[i : j + 1], i, j + 1))
            i = j + 1
        elif c == "`":
            j = i + 1
            while True:
                k = sql.find("`", j)
                if k < 0:
                    raise SqlSyntaxError("unterminated `quoted identifier`")
                if k + 1 < n and sql[k + 1] == "`":
                    j = k + 2
                    continue
                break
            out.append(Token("qident", sql[i : k + 1], i, k + 1))
            i = k + 1
        elif c == ":" and (m := _PARAM.match(sql, i)) and not sql.startswith("::", i):
            out.append(Token("param", m.group(0), i, m.end()))
            i = m.end()
        elif m := _WORD.match(sql, i):
            out.append(Token("word", m.group(0), i, m.end()))
            i = m.end()
        elif c.isdigit() or (c == "." and i + 1 < n and sql[i + 1].isdigit()):
            m = _NUMBER.match(sql, i)
            assert m is not None
            out.append(Token("number", m.group(0), i, m.end()))
            i = m.end()
        else:
            for op in _MULTI_OPS:
                if sql.startswith(op, i):
                    out.append(Token("punct", op, i, i + len(op)))
                    i += len(op)
                    break
            else:
                out.append(Token("punct", c, i, i + 1))
                i += 1
    return out


def significant(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.kind not in ("ws", "comment")]


def strip_statement(sql: str) -> str:
    """Removes surrounding whitespace, comments and trailing semicolons."""
    toks = significant(tokenize(sql))
    while toks and toks[-1].is_punct(";"):
        toks.pop()
    if not toks:
        return ""
    if any(t.is_punct(";") for t in toks):
        raise SqlSyntaxError("only one statement per request is supported")
    return sql[toks[0].start : toks[-1].end]


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "0": "\0", "Z": "\x1a", "%": "\\%", "_": "\\_"}


def string_value(tok: Token) -> str:
    """Decodes a string literal token."""
    if tok.kind != "string":
        raise SqlSyntaxError(f"expected a string literal, found {tok.text!r}")
    text = tok.text
    if text[0] in "rR":
        return text[2:-1]
    body = text[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def ident_value(tok: Token) -> str:
    if tok.kind == "qident":
        return tok.text[1:-1].replace("``", "`")
    if tok.kind == "word":
        return tok.text
    raise SqlSyntaxError(f"expected an identifier, found {tok.text!r}")


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def quote_name(parts: list[str] | tuple[str, ...]) -> str:
    return ".".join(quote_ident(p) for p in parts)


def quote_string(value: str) -> str:
    """A Spark SQL string literal for ``value`` (backslash escapes, as Spark parses them)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def read_name(toks: list[Token], i: int) -> tuple[list[str], int]:
    """Reads a dotted name starting at ``toks[i]``; returns (parts, index after it)."""
    if i >= len(toks) or toks[i].kind not in ("word", "qident"):
        found = toks[i].text if i < len(toks) else "end of statement"
        raise SqlSyntaxError(f"expected a name, found {found!r}")
    parts = [ident_value(toks[i])]
    i += 1
    while i + 1 < len(toks) and toks[i].is_punct(".") and toks[i + 1].kind in ("word", "qident"):
        parts.append(ident_value(toks[i + 1]))
        i += 2
    return parts, i


def matching_paren(toks: list[Token], i: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``toks[i]``."""
    if not toks[i].is_punct("("):
        raise SqlSyntaxError(f"expected '(', found {toks[i].text!r}")
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].is_punct("("):
            depth += 1
        elif toks[j].is_punct(")"):
            depth -= 1
            if depth == 0:
                return j
    raise SqlSyntaxError("unbalanced parentheses")


def split_top_level(toks: list[Token], sep: str = ",") -> list[list[Token]]:
    """Splits tokens at top-level separators (outside (), <> and [])."""
    groups: list[list[Token]] = [[]]
    depth = 0
    for t in toks:
        if t.is_punct("(", "<", "["):
            depth += 1
        elif t.is_punct(")", ">", "]"):
            depth -= 1
        if depth == 0 and t.is_punct(sep):
            groups.append([])
        else:
            groups[-1].append(t)
    return [g for g in groups if g]


def find_top_level_kw(toks: list[Token], start: int, *words: str) -> int:
    """Index of the first top-level (depth 0) keyword among ``words`` at or after ``start``."""
    depth = 0
    for j in range(start, len(toks)):
        t = toks[j]
        if t.is_punct("("):
            depth += 1
        elif t.is_punct(")"):
            depth -= 1
        elif depth == 0 and t.is_kw(*words):
            return j
    return -1


def dotted_names(toks: list[Token]) -> list[list[str]]:
    """Every dotted identifier sequence in the statement (candidate table references)."""
    names, i = [], 0
    while i < len(toks):
        if toks[i].kind in ("word", "qident") and not (i > 0 and toks[i - 1].kind == "param"):
            parts, j = read_name(toks, i)
            names.append(parts)
            i = j
        else:
            i += 1
    return names
