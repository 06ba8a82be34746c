"""Walking the tree: statements nested in the statement, acting functions, INTO, locks and NEXTVAL."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from .embedded import check_embedded_function, check_embedded_table
from .rules import EMBEDDED_HINT, READ_HINT, READ_ONLY_SYSTEM_FUNCTIONS, WRITE_HINT, WRITE_TOOL, refuse
from .statements import describe

if TYPE_CHECKING:
    from sqlglot import exp


@functools.cache
def _statement_nodes() -> tuple[type, ...]:
    from sqlglot import exp

    # fmt: off
    names = (
        "Insert", "Update", "Delete", "Merge", "MultitableInserts", "Create", "Drop", "Alter",
        "TruncateTable", "Command", "Copy", "Put", "Get", "ListStage", "Use", "Set", "Transaction",
        "Commit", "Rollback", "Grant", "Revoke", "Pragma", "Comment", "Attach", "Detach", "Install",
        "Export", "Undrop", "Analyze", "Refresh", "Cache", "Uncache", "LoadData", "Kill", "Execute",
        "Declare", "Summarize",
    )
    # fmt: on
    return tuple(cls for name in names if isinstance(cls := getattr(exp, name, None), type))


def check_tree(tree: exp.Expr, *, write: bool, embedded: bool) -> None:
    """Refuse statements nested inside the statement, acting functions and (embedded) file access."""
    from sqlglot import exp

    statement_nodes = _statement_nodes()
    for node in tree.walk():
        if node is not tree and isinstance(node, statement_nodes) and not _is_part_of_root(node, tree):
            refuse(
                f"the statement contains a nested {describe(node, [])} "
                f"({node.sql(dialect='snowflake')[:80]!r}); only the top-level statement may change anything",
                WRITE_HINT if write else READ_HINT,
            )
        if isinstance(node, exp.Into):
            refuse(
                "SELECT ... INTO creates a table",
                f"use CREATE TABLE ... AS SELECT in {WRITE_TOOL}" if write else READ_HINT,
            )
        if isinstance(node, exp.Lock) and not write:
            refuse("SELECT ... FOR UPDATE/FOR SHARE takes row locks that block other sessions", READ_HINT)
        if isinstance(node, exp.Func):
            _check_function(node, write=write, embedded=embedded)
        if isinstance(node, exp.Column) and not write and node.name.upper() == "NEXTVAL":
            refuse(
                f"{node.sql(dialect='snowflake')} takes the next value of a sequence, which consumes it",
                f"use sequences in {WRITE_TOOL} statements (e.g. INSERT ... seq.NEXTVAL) instead",
            )
        if embedded and isinstance(node, exp.Table):
            check_embedded_table(node)
        if embedded and isinstance(node, exp.TableFromRows) and not isinstance(node.this, exp.Func):
            refuse(
                f"TABLE({node.this.sql(dialect='snowflake')[:60]}) is not allowed in the embedded DuckDB "
                "warehouse: the guard cannot tell which table or file it names",
                EMBEDDED_HINT,
            )


def _is_part_of_root(node: exp.Expr, root: exp.Expr) -> bool:
    """MERGE's WHEN actions, INSERT ALL's branches and ALTER's actions belong to the statement itself."""
    from sqlglot import exp

    parent = node.parent
    if isinstance(root, exp.Merge):
        return isinstance(parent, exp.When)
    if isinstance(root, exp.MultitableInserts):
        return isinstance(node, exp.Insert) and (parent is root or isinstance(parent, exp.ConditionalInsert))
    if isinstance(root, exp.Alter):
        return parent is root and node.arg_key == "actions" and isinstance(node, (exp.Drop, exp.Alter))
    return False


def _function_names(node: exp.Func) -> set[str]:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        names = {node.name}
    elif isinstance(node, exp.DynamicIdentifier):
        names = set()
    else:
        names = {*type(node).sql_names(), node.key}
    return {name.lower() for name in names if name}


def _check_function(node: exp.Func, *, write: bool, embedded: bool) -> None:
    from sqlglot import exp

    if isinstance(node, exp.DynamicIdentifier) and node.expressions:
        refuse("IDENTIFIER(...) used as a function name hides which function runs", "call the function by its name")
    names = _function_names(node)
    for name in names:
        if "system$" in name and name.upper() not in READ_ONLY_SYSTEM_FUNCTIONS:
            refuse(
                f"{name.upper()} is not allowed: SYSTEM$ functions can cancel queries, abort sessions, send "
                "notifications or change account state; only these read-only ones are allowed: "
                + ", ".join(sorted(READ_ONLY_SYSTEM_FUNCTIONS)),
                "cancel or abort queries from Snowflake's UI or an administrator session",
            )
        if not write and name in ("nextval", "setval"):
            refuse(f"{name.upper()}() changes a sequence", READ_HINT)
    if embedded:
        check_embedded_function(node, names)
