"""What kind of statement it is: the statement types each tool accepts, and the exact write shapes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .lexing import words as token_words
from .rules import (
    CATALOG_HINT,
    CODE_OBJECTS,
    COMMENT_KINDS,
    CREATE_MODIFIERS,
    PARSE_HINT,
    POLICY_REFUSAL,
    READ_HINT,
    READ_TOOL,
    REFUSED_LEADING,
    SECURITY_OBJECTS,
    WRITE_HINT,
    WRITE_OBJECT_KINDS,
    WRITE_TOOL,
    refuse,
    tool_name,
)

if TYPE_CHECKING:
    from sqlglot import exp
    from sqlglot.tokens import Token


def refuse_by_leading_words(words: list[str], tokens: list[Token], *, write: bool) -> None:
    for size in (2, 1):
        key = " ".join(words[:size])
        if key in REFUSED_LEADING:
            why, hint = REFUSED_LEADING[key]
            refuse(f"{key} is not allowed in {tool_name(write)}: {why}", hint)
    if words[:1] == ["ALTER"] and write:
        return  # ALTER SCHEMA/DATABASE are read precisely below
    if words[:1] in (["CREATE"], ["ALTER"], ["DROP"], ["COMMENT"]):
        kind = _object_kind_from_words(words, tokens)
        _refuse_object_kind("COMMENT ON" if words[0] == "COMMENT" else words[0], kind, write=write)


def _object_kind_from_words(words: list[str], tokens: list[Token]) -> str:
    rest = token_words(tokens[1:8])
    if words[:1] == ["COMMENT"]:
        rest = rest[rest.index("ON") + 1 :] if "ON" in rest else rest
    rest = [word for word in rest if word not in CREATE_MODIFIERS]
    for size in (3, 2, 1):
        candidate = " ".join(rest[:size])
        if candidate in SECURITY_OBJECTS or candidate in CODE_OBJECTS:
            return candidate
    return rest[0] if rest else ""


def _refuse_object_kind(verb: str, kind: str, *, write: bool) -> None:
    """Refuse CREATE/ALTER/DROP/COMMENT of objects outside tables, views, schemas and databases."""
    if kind in SECURITY_OBJECTS or kind.endswith(("INTEGRATION", "POLICY", "SECRET", "ROLE")):
        refuse(
            f"{verb} {kind} is not allowed in {tool_name(write)}: it administers accounts, privileges, "
            "secrets or network access",
            f"ask an administrator; {WRITE_TOOL} only changes tables, views, schemas and databases",
        )
    if kind in CODE_OBJECTS:
        refuse(
            f"{verb} {kind} is not allowed in {tool_name(write)}: it defines code, schedules, stages or compute "
            "that the guard cannot check",
            WRITE_HINT,
        )


def classify(tree: exp.Expr, tokens: list[Token], *, write: bool, embedded: bool) -> str:
    """The statement type; refuses any statement the tool does not accept (the tree is walked later)."""
    from sqlglot import exp

    kind = query_type(tree)
    if kind is None and isinstance(tree, exp.Show):
        kind = "SHOW"
    if kind is None and isinstance(tree, exp.Describe):
        kind = "DESCRIBE"
    if kind is None and isinstance(tree, exp.Command) and str(tree.this).upper() == "SHOW":
        if embedded:
            refuse(
                f"SHOW {_command_words(tree)} is only available on Snowflake, not in the embedded DuckDB warehouse",
                CATALOG_HINT,
            )
        _check_show_command(tokens)
        kind = "SHOW"  # Snowflake SHOW only ever reads metadata; sqlglot knows few of its forms
    if kind is not None:
        if write and tree.find(exp.Into):
            refuse("SELECT ... INTO creates a table", f"use CREATE TABLE ... AS SELECT in {WRITE_TOOL}")
        if write:
            refuse(f"{WRITE_TOOL} only runs DDL/DML, and this is a {kind} query", f"use {READ_TOOL}")
        return kind
    if not write:
        refuse(
            f"{READ_TOOL} only runs read-only queries (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) and this is "
            f"{_article(describe(tree, tokens))}",
            READ_HINT,
        )
    return write_type(tree, tokens)


_SHOW_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def _check_show_command(tokens: list[Token]) -> None:
    """A SHOW that sqlglot only reads as a Command: names, literals, LIKE/IN/LIMIT words, nothing else."""
    from sqlglot.tokens import TokenType

    literal_types = {TokenType.STRING, TokenType.IDENTIFIER, TokenType.NUMBER, TokenType.RAW_STRING}
    for token in tokens:
        if token.token_type in literal_types or token.text in {".", ",", "(", ")", "=", "*"}:
            continue
        if not _SHOW_WORD.fullmatch(token.text):
            refuse(f"{token.text!r} has no place in a SHOW command", READ_HINT)


def query_type(tree: exp.Expr) -> str | None:
    from sqlglot import exp

    node = tree
    while isinstance(node, exp.Subquery):
        node = node.this
    if isinstance(node, (exp.Select, exp.SetOperation)):
        return "WITH" if has_with(node) else "SELECT"
    if isinstance(node, exp.Values):
        return "VALUES"
    return None


def has_with(node: exp.Expr) -> bool:
    return bool(node.args.get("with_") or node.args.get("with"))


def describe(tree: exp.Expr, tokens: list[Token]) -> str:
    """A short upper-case name for a statement, e.g. 'DELETE', 'CREATE TABLE', 'MERGE'."""
    from sqlglot import exp

    if isinstance(tree, exp.Command):
        return f"{str(tree.this).upper()} {_command_words(tree)}".strip()
    if isinstance(tree, (exp.Create, exp.Drop, exp.Alter)):
        kind = str(tree.args.get("kind") or "").upper()
        verb = type(tree).__name__.upper()  # CREATE, DROP or ALTER
        return f"{verb} {kind}".strip()
    if isinstance(tree, exp.TruncateTable):
        return "TRUNCATE TABLE"
    if isinstance(tree, exp.MultitableInserts):
        return "INSERT"
    words = token_words(tokens[:1])
    return words[0] if words and words[0] else type(tree).__name__.upper()


def _article(name: str) -> str:
    return f"an {name} statement" if name[:1] in "AEIOU" else f"a {name} statement"


def _command_words(tree: exp.Command, count: int = 1) -> str:
    expression = tree.args.get("expression")
    text = expression if isinstance(expression, str) else getattr(expression, "name", "")
    return " ".join(text.split()[:count]).upper()


def write_type(tree: exp.Expr, tokens: list[Token]) -> str:
    """The statement type of an accepted write; refuses every other statement."""
    from sqlglot import exp

    if isinstance(tree, (exp.Insert, exp.MultitableInserts)):
        return "INSERT"
    if isinstance(tree, exp.Update):
        return "UPDATE"
    if isinstance(tree, exp.Delete):
        return "DELETE"
    if isinstance(tree, exp.Merge):
        return "MERGE"
    if isinstance(tree, exp.TruncateTable):
        return "TRUNCATE TABLE"
    if isinstance(tree, (exp.Create, exp.Drop, exp.Alter)):
        return _object_write_type(tree)
    if isinstance(tree, exp.Comment):
        kind = str(tree.args.get("kind") or "").upper()
        if kind not in COMMENT_KINDS:
            refuse(f"COMMENT ON {kind} is not allowed: only tables, views, columns, schemas and databases", WRITE_HINT)
        return "COMMENT"
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "ALTER":
        return _alter_schema_or_database(tokens)
    name = describe(tree, tokens)
    if isinstance(tree, exp.Command):
        refuse(
            f"{name} is not a statement the guard can read (sqlglot only sees it as an opaque command), so "
            "its effect cannot be checked",
            WRITE_HINT,
        )
    refuse(f"{name} is not among the statements {WRITE_TOOL} runs", WRITE_HINT)


def _object_write_type(tree: exp.Expr) -> str:
    from sqlglot import exp

    verb = type(tree).__name__.upper()  # CREATE, DROP or ALTER
    kind = str(tree.args.get("kind") or "").upper()
    if kind not in WRITE_OBJECT_KINDS:
        _refuse_object_kind(verb, kind, write=True)
        refuse(
            f"{verb} {kind or 'of this object'} is not allowed: only tables, views, schemas and databases", WRITE_HINT
        )
    properties = tree.args.get("properties")
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.ExternalProperty):
            refuse(f"{verb} EXTERNAL {kind} is not allowed: it reads files from a stage or cloud storage", WRITE_HINT)
        if isinstance(prop, exp.DynamicProperty):
            refuse(f"{verb} DYNAMIC {kind} is not allowed: it schedules recurring warehouse compute", WRITE_HINT)
    if isinstance(tree, exp.Alter) and kind not in ("TABLE", "VIEW"):
        refuse(f"ALTER {kind} is not allowed in this form", WRITE_HINT)
    if isinstance(tree, exp.Alter) and "POLICY" in tree.sql(dialect="snowflake").upper().split():
        refuse(POLICY_REFUSAL, "ask an administrator to change policies")
    return f"{verb} {kind}"


def _alter_schema_or_database(tokens: list[Token]) -> str:
    """ALTER SCHEMA/DATABASE, which sqlglot only reads as a Command: accept a few exact token shapes."""
    from sqlglot.tokens import TokenType

    words = token_words(tokens)
    kind = words[1] if len(words) > 1 else ""
    if kind not in ("SCHEMA", "DATABASE"):
        _refuse_object_kind("ALTER", _object_kind_from_words(words, tokens), write=True)
        if "POLICY" in words:
            refuse(POLICY_REFUSAL, "ask an administrator to change policies")
        if kind in WRITE_OBJECT_KINDS:
            refuse(
                f"this ALTER {kind} form is not one the guard can read (sqlglot only sees an opaque command), "
                "so its effect cannot be checked",
                WRITE_HINT,
            )
        refuse(f"ALTER {kind} is not allowed: only tables, views, schemas and databases can be altered", WRITE_HINT)
    i = 2
    if words[i : i + 2] == ["IF", "EXISTS"]:
        i += 2
    i = _skip_name(tokens, i)
    action = words[i : i + 2]
    name_types = (TokenType.VAR, TokenType.IDENTIFIER)
    if action in (["RENAME", "TO"], ["SWAP", "WITH"]):
        end = _skip_name(tokens, i + 2)
        if end == len(tokens) and end > i + 2 and tokens[i + 2].token_type in name_types:
            return f"ALTER {kind}"
    elif action == ["SET", "COMMENT"]:
        rest = tokens[i + 2 :]
        if len(rest) == 2 and rest[0].token_type == TokenType.EQ and rest[1].token_type == TokenType.STRING:
            return f"ALTER {kind}"
    elif action == ["UNSET", "COMMENT"] and len(tokens) == i + 2:
        return f"ALTER {kind}"
    refuse(
        f"this ALTER {kind} form is not allowed: only RENAME TO, SWAP WITH and SET/UNSET COMMENT are "
        "(replication, sharing, failover and parameter changes administer the account)",
        "ask an administrator for other ALTER SCHEMA/DATABASE changes",
    )


def _skip_name(tokens: list[Token], i: int) -> int:
    """Index after a dotted object name starting at `i` (identifiers and unreserved words)."""
    from sqlglot.tokens import TokenType

    if i >= len(tokens) or tokens[i].token_type not in (TokenType.VAR, TokenType.IDENTIFIER):
        return i
    i += 1
    while i + 1 < len(tokens) and tokens[i].token_type == TokenType.DOT:
        if tokens[i + 1].token_type not in (TokenType.VAR, TokenType.IDENTIFIER):
            break
        i += 2
    return i


def explain_parts(tokens: list[Token]) -> tuple[bool, int]:
    """For EXPLAIN [ANALYZE] [USING TEXT|JSON|TABULAR] <statement>: (analyze?, index of the statement)."""
    words = token_words(tokens)
    i = 1
    analyze = words[i : i + 1] in (["ANALYZE"], ["ANALYSE"])
    i += analyze
    if words[i : i + 1] == ["USING"]:
        if words[i + 1 : i + 2] not in (["TEXT"], ["JSON"], ["TABULAR"]):
            refuse("EXPLAIN USING takes TEXT, JSON or TABULAR", PARSE_HINT)
        i += 2
    if i >= len(tokens):
        refuse("EXPLAIN needs a query to explain", PARSE_HINT)
    if words[i] == "EXPLAIN":
        refuse("EXPLAIN of an EXPLAIN is not allowed", PARSE_HINT)
    return analyze, i
