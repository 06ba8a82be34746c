"""sqlglot, imported once and used under one lock.

sqlglot imports its dialects, parsers and generators lazily. When several worker threads made their first
call at once, those imports ran concurrently and deadlocked (`_DeadlockError`), leaving a module half
initialised for the life of the process. Everything here runs under one re-entrant lock: the first caller
imports and warms up sqlglot, and no two guard calls ever run sqlglot at the same time (the work is
CPU-bound under the GIL, so nothing is lost). Importing this module stays cheap: no sqlglot until then.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

_LOCK = threading.RLock()
_loaded = False

# Parses and generates every statement shape the guard uses, so lazy imports inside sqlglot (dialects,
# parsers, generators, optimizer helpers) happen here, under the lock, and never during a later check.
_WARM_UP = (
    "SELECT a:b::STRING, TO_CHAR(d), ARRAY_TO_STRING(ARRAY_AGG(x), ','), IFF(a > 1, 1, 2), :1 "
    "FROM t, LATERAL (SELECT 1) f QUALIFY ROW_NUMBER() OVER (ORDER BY a) = 1"
)
# Recursion the parser may use: about 15 Python frames per nested parenthesis, so 5,000 allows the
# 200 levels `lexing.MAX_NESTING` admits. sqlglot is pure Python, whose calls barely use the C stack.
_RECURSION_LIMIT = 5_000


def _load() -> None:
    global _loaded
    import sqlglot
    import sqlglot.errors
    import sqlglot.expressions
    import sqlglot.tokens
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect

    for name in ("snowflake", "duckdb"):
        dialect = Dialect.get_or_raise(name)
        list(dialect.tokenizer_class().tokenize("SELECT 1"))
    from .translation import embedded_dialect

    tree = sqlglot.parse_one(_WARM_UP, read="snowflake")
    text = tree.sql(dialect=embedded_dialect())
    sqlglot.parse_one(text, read="duckdb").sql(dialect="snowflake")
    exp.Placeholder()  # the expression module is complete
    _loaded = True


@contextlib.contextmanager
def sqlglot_session() -> Iterator[None]:
    """Hold the guard's lock (importing sqlglot on first use) with room for deeply nested statements."""
    with _LOCK:
        if not _loaded:
            _load()
        previous = sys.getrecursionlimit()
        if previous < _RECURSION_LIMIT:
            sys.setrecursionlimit(_RECURSION_LIMIT)
        try:
            yield
        finally:
            if previous < _RECURSION_LIMIT:
                sys.setrecursionlimit(previous)
