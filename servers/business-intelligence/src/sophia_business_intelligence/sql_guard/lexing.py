"""Reading the text: exactly one statement, nothing hidden between tokens, placeholders numbered."""

from __future__ import annotations

import functools
import itertools
import re
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from .rules import MAX_SQL_CHARS, NESTING_HINT, ONE_STATEMENT_HINT, PARSE_HINT, refuse

if TYPE_CHECKING:
    from sqlglot import exp
    from sqlglot.tokens import Token

# Parentheses the guard reads; deeper statements are refused before parsing (machine-written SQL rarely
# needs more than a few dozen).
MAX_NESTING = 200


@functools.cache
def tokenizer_class(dialect: str) -> Any:
    from sqlglot.dialects.dialect import Dialect

    class StatementTokenizer(Dialect.get_or_raise(dialect).tokenizer_class):  # type: ignore[misc]
        # sqlglot swallows the text after EXPLAIN/CALL/... as one raw string; tokenize all of it so
        # every semicolon and comment is seen.
        COMMANDS: ClassVar[set[Any]] = set()

    return StatementTokenizer


def tokenize(sql: str, dialect: str = "snowflake") -> list[Token]:
    from sqlglot.errors import TokenError

    try:
        return list(tokenizer_class(dialect)(dialect=dialect).tokenize(sql))
    except TokenError as exc:
        refuse(
            f"the SQL could not be read ({first_line(exc)}); an unterminated string, quoted name or "
            "comment could hide another statement",
            PARSE_HINT,
        )


def single_statement(sql: str) -> tuple[str, list[Token]]:
    """The one statement's text and tokens; refuses 0 or 2+ statements and ambiguous characters."""
    if not isinstance(sql, str):
        refuse(f"expected SQL text, got {type(sql).__name__}", PARSE_HINT)
    if len(sql) > MAX_SQL_CHARS:
        refuse(
            f"the SQL is {len(sql):,} characters long (limit {MAX_SQL_CHARS:,})",
            "shorten the statement; pass data as bound parameters instead of inline literals",
        )
    _refuse_ambiguous_characters(sql)
    tokens = tokenize(sql)
    _check_between_tokens(sql, tokens)

    from sqlglot.tokens import TokenType

    segments: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            segments.append([])
        else:
            segments[-1].append(token)
    statements = [segment for segment in segments if segment]
    if any(token.token_type == TokenType.DARROW for token in tokens):
        # sqlglot reads `->>` as JSON extraction (so `SELECT 1 ->> DELETE FROM t` parses as one SELECT);
        # Snowflake reads it as the flow operator, which runs the next statement.
        refuse(
            "the SQL uses ->>, which Snowflake reads as the flow operator that chains another statement",
            ONE_STATEMENT_HINT,
        )
    if not statements:
        refuse("no SQL statement was given (only whitespace, comments or semicolons)", PARSE_HINT)
    if len(statements) > 1:
        refuse(
            f"the SQL contains {len(statements)} statements separated by semicolons; exactly one "
            "statement is allowed per call",
            ONE_STATEMENT_HINT,
        )
    _refuse_deep_nesting(tokens)
    statement = statements[0]
    first = tokens.index(statement[0])
    start = tokens[first - 1].end + 1 if first else 0
    # Cut right after the last token: a trailing `--` comment would swallow anything appended later.
    text = sql[start : statement[-1].end + 1].strip()
    return text, tokenize(text)


def _refuse_deep_nesting(tokens: list[Token]) -> None:
    from sqlglot.tokens import TokenType

    depth = deepest = 0
    for token in tokens:
        if token.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE):
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE):
            depth -= 1
    if deepest > MAX_NESTING:
        refuse_nesting(f"{deepest} levels of parentheses (limit {MAX_NESTING})")


def refuse_nesting(detail: str = "") -> NoReturn:
    refuse(f"the statement is nested too deeply to be checked{f' ({detail})' if detail else ''}", NESTING_HINT)


# A `?` where a value may stand: after these tokens (or at the start) it can only be a placeholder.
_VALUE_AFTER_TEXT = frozenset({"(", ",", "[", "=", "<", ">", "<=", ">=", "<>", "!=", "+", "-", "*", "/", "%", "||"})


def numbered_placeholders(text: str, tokens: list[Token]) -> str:
    """The text with each `?` written as Snowflake's numbered `:n`, for reading only.

    sqlglot cannot read `?::DATE`, and the DuckDB translation may repeat an argument (LENGTH(?) becomes
    a CASE that uses it three times): numbered placeholders parse everywhere and bind the same value each
    time they repeat. A `?` right after a name or a closing bracket is left alone: it is not a value there.
    """
    from sqlglot.tokens import TokenType

    marks = [
        (i, token)
        for i, token in enumerate(tokens)
        if token.token_type in (TokenType.PLACEHOLDER, TokenType.QDCOLON) and token.text.startswith("?")
    ]
    if not marks:
        return text
    if any(a.token_type == TokenType.COLON and b.token_type == TokenType.NUMBER for a, b in itertools.pairwise(tokens)):
        return text  # already numbered (`:1`): mixing the two styles is left to the engine to reject
    parts: list[str] = []
    position = 0
    for number, (i, token) in enumerate(marks, start=1):
        before = tokens[i - 1] if i else None
        if before is not None and before.text.upper() not in _VALUE_AFTER_TEXT and not _is_keyword(before):
            return text
        parts += [text[position : token.start], f":{number}", token.text[1:]]
        position = token.end + 1
    parts.append(text[position:])
    return "".join(parts)


def _is_keyword(token: Token) -> bool:
    from sqlglot.tokens import TokenType

    return (
        token.token_type
        not in (
            TokenType.VAR,
            TokenType.IDENTIFIER,
            TokenType.NUMBER,
            TokenType.STRING,
            TokenType.R_PAREN,
            TokenType.R_BRACKET,
            TokenType.R_BRACE,
            TokenType.PLACEHOLDER,
            TokenType.PARAMETER,
            TokenType.COLON,
        )
        and token.text[:1].isalpha()
    )


# Control characters, Unicode line/paragraph separators and a CR not followed by LF: engines disagree on
# whether they end a `--` comment, so what the guard reads as a comment might run as code.
_AMBIGUOUS_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]|\r(?!\n)")


def _refuse_ambiguous_characters(sql: str) -> None:
    match = _AMBIGUOUS_CHARACTER.search(sql)
    if match:
        char = match.group()
        names = {"\0": "the NUL character", "\r": "a carriage return without a line feed"}
        name = names.get(char) or f"the control character U+{ord(char):04X}"
        refuse(
            f"the SQL contains {name} at position {match.start()}; SQL engines disagree on whether it ends a comment",
            "remove control characters (use plain line breaks); pass data values as bound parameters",
        )


def _check_between_tokens(sql: str, tokens: list[Token]) -> None:
    """Between tokens there may only be plain whitespace and comments that every engine reads alike."""
    position = 0
    for token in tokens:
        _check_gap(sql[position : token.start], position)
        position = token.end + 1
    _check_gap(sql[position:], position)


def _check_gap(gap: str, offset: int) -> None:
    i = 0
    while i < len(gap):
        char = gap[i]
        if char in " \t\n\r":
            i += 1
        elif gap.startswith(("--", "//"), i):
            end = min((j for j in (gap.find("\n", i), gap.find("\r", i)) if j != -1), default=len(gap))
            _check_comment(gap[i + 2 : end])
            i = end
        elif gap.startswith("/*", i):
            end = gap.find("*/", i + 2)
            if end == -1:
                refuse("a block comment is not closed", PARSE_HINT)
            _check_comment(gap[i + 2 : end])
            i = end + 2
        elif char.isspace():
            refuse(
                f"the SQL contains the Unicode space U+{ord(char):04X} outside a string at position "
                f"{offset + i}; engines disagree on whether it separates words",
                "replace it with an ordinary space",
            )
        else:
            refuse(f"the text {gap[i : i + 20]!r} at position {offset + i} could not be read as SQL", PARSE_HINT)


def _check_comment(body: str) -> None:
    if "/*" in body or "*/" in body:
        refuse(
            "a comment contains '/*' or '*/'; DuckDB and PostgreSQL nest block comments while Snowflake "
            "does not, so engines would disagree on where the comment ends",
            "remove the nested comment markers from the comment",
        )


def parse_one(text: str, dialect: str) -> exp.Expr:
    import sqlglot
    from sqlglot import exp

    try:
        trees = sqlglot.parse(text, read=dialect)
    except RecursionError:
        refuse_nesting()
    except Exception as exc:  # ParseError, TokenError, and sqlglot's own internal errors
        shown = {"snowflake": "Snowflake", "duckdb": "DuckDB"}.get(dialect, dialect)
        refuse(f"the SQL could not be parsed as {shown} SQL ({first_line(exc)})", PARSE_HINT)
    statements = [tree for tree in trees if tree is not None and not isinstance(tree, exp.Semicolon)]
    if len(statements) != 1:
        refuse(f"the SQL parses as {len(statements)} statements; exactly one is allowed", ONE_STATEMENT_HINT)
    return statements[0]


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


def words(tokens: list[Token]) -> list[str]:
    """Upper-case keywords and names; quoted names and literals become "" so they never match a keyword."""
    from sqlglot.tokens import TokenType

    quoted = {TokenType.IDENTIFIER, TokenType.STRING, TokenType.RAW_STRING, TokenType.NATIONAL_STRING}
    return ["" if token.token_type in quoted else token.text.upper() for token in tokens]


def leading_words(tokens: list[Token], count: int = 4) -> list[str]:
    return words(tokens[:count])
