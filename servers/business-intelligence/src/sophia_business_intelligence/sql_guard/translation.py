"""Snowflake SQL to DuckDB for the embedded warehouse: faithful rewrites, or a refusal that says why.

sqlglot does most of the work; the rewrites here cover what it gets wrong for DuckDB 2.0 or drops
silently (see docs/snowflake-sql-on-duckdb.md). Each works on a copy of the Snowflake tree before DuckDB
text is generated, so Snowflake's meaning decides the rewrite.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from .lexing import first_line, words
from .rules import CATALOG_HINT, TRANSLATE_HINT, refuse

if TYPE_CHECKING:
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.tokens import Token


@functools.cache
def embedded_dialect() -> Dialect:
    """DuckDB as sqlglot writes it, with DuckDB 2.0's `LAMBDA x : ...` (it rejects `x -> ...` by default)."""
    from sqlglot.dialects.duckdb import DuckDB

    class SophiaDuckDB(DuckDB):
        class Generator(DuckDB.Generator):  # type: ignore[misc,valid-type]
            def lambda_sql(self, expression: exp.Lambda, arrow_sep: str = "->", wrap: bool = True) -> str:
                return f"LAMBDA {self.expressions(expression, flat=True)} : {self.sql(expression, 'this')}"

    return SophiaDuckDB()


def translate(tree: exp.Expr, text: str, tokens: list[Token]) -> str:
    """The DuckDB text for a parsed Snowflake statement (`text`/`tokens` are its source, for names)."""
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel

    if isinstance(tree, exp.Show):
        return show_tables_sql(tokens)
    tree = tree.copy()
    _name_projections(tree, text, tokens)
    for table in list(tree.find_all(exp.Table)):
        if isinstance(table.this, exp.DynamicIdentifier) and not table.this.expressions:
            _replace_identifier_table(table)
    json_aliases = _rewrite_table_functions(tree)
    # Deepest first, so a rewrite of a parent sees its children already rewritten.
    for node in reversed(list(tree.walk(bfs=True))):
        _rewrite_node(node, json_aliases)
    try:
        return tree.sql(dialect=embedded_dialect(), comments=False, unsupported_level=ErrorLevel.RAISE)
    except RecursionError:
        raise
    except Exception as exc:
        refuse(f"the embedded DuckDB warehouse cannot run this faithfully ({first_line(exc)})", TRANSLATE_HINT)


# --- SHOW TABLES ----------------------------------------------------------------------------------


def show_tables_sql(tokens: list[Token]) -> str:
    """SHOW [TERSE] TABLES [LIKE] [IN ...] [STARTS WITH] [LIMIT [FROM]] as a query over information_schema."""
    from sqlglot.tokens import TokenType

    said = words(tokens)
    i = 1
    terse = said[i : i + 1] == ["TERSE"]
    i += terse
    if said[i : i + 1] != ["TABLES"]:
        shown = " ".join(token.text.upper() for token in tokens[: i + 1])
        refuse(f"{shown} is only available on Snowflake, not in the embedded DuckDB warehouse", CATALOG_HINT)
    i += 1
    where = [
        "table_type IN ('BASE TABLE', 'LOCAL TEMPORARY')",
        "table_schema NOT IN ('information_schema', 'pg_catalog')",
    ]
    limit = ""

    def string_at(j: int) -> str:
        if j >= len(tokens) or tokens[j].token_type != TokenType.STRING:
            refuse(f"SHOW TABLES expects a quoted string after {said[j - 1]}", CATALOG_HINT)
        return _sql_string(tokens[j].text)

    while i < len(tokens):
        word = said[i]
        if word == "LIKE":
            where.append(f"table_name ILIKE {string_at(i + 1)} ESCAPE '\\'")
            i += 2
        elif word == "STARTS" and said[i + 1 : i + 2] == ["WITH"]:
            where.append(f"starts_with(table_name, {string_at(i + 2)})")
            i += 3
        elif word == "LIMIT" and i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.NUMBER:
            limit = f" LIMIT {int(tokens[i + 1].text)}"
            i += 2
            if said[i : i + 1] == ["FROM"]:
                where.append(f"table_name > {string_at(i + 1)}")
                i += 2
        elif word == "IN":
            i = _show_scope(tokens, said, i + 1, where)
        else:
            refuse(
                f"SHOW TABLES {tokens[i].text.upper()} is not translated for the embedded DuckDB warehouse",
                CATALOG_HINT,
            )
    if terse:
        columns = "created_on, name, kind, database_name, schema_name"
    else:
        columns = "created_on, name, database_name, schema_name, kind, comment"
    return (
        f"SELECT {columns} FROM (SELECT CAST(NULL AS TIMESTAMP) AS created_on, table_name AS name, "
        "table_catalog AS database_name, table_schema AS schema_name, "
        "CASE WHEN table_type = 'LOCAL TEMPORARY' THEN 'TEMPORARY' ELSE 'TABLE' END AS kind, "
        "TABLE_COMMENT AS comment, table_type FROM information_schema.tables WHERE "
        + " AND ".join(where)
        + f") ORDER BY database_name, schema_name, name{limit}"
    )


def _show_scope(tokens: list[Token], said: list[str], i: int, where: list[str]) -> int:
    """IN ACCOUNT | DATABASE [db] | SCHEMA [[db.]schema] | [db.]schema: a filter; returns the next index."""
    kind = said[i] if i < len(said) else ""
    if kind == "ACCOUNT":
        return i + 1
    if kind in ("DATABASE", "SCHEMA"):
        i += 1
    parts, i = _dotted_name(tokens, i)
    if not parts:
        if kind == "DATABASE":
            return i  # the current database: the embedded warehouse has one
        refuse("SHOW TABLES IN needs a schema or database name", "name the schema, e.g. SHOW TABLES IN SCHEMA crm")
    if kind == "DATABASE":
        if len(parts) != 1:
            refuse("SHOW TABLES IN DATABASE takes one name", CATALOG_HINT)
        where.append(_name_matches("table_catalog", parts[0]))
    elif kind == "SCHEMA" or len(parts) == 2:
        if len(parts) > 2:
            refuse("a schema name has at most two parts (database.schema)", CATALOG_HINT)
        where.append(_name_matches("table_schema", parts[-1]))
        if len(parts) == 2:
            where.append(_name_matches("table_catalog", parts[0]))
    else:
        # A bare name is a schema of the current database if one exists, else a database (Snowflake's rule).
        schema = _name_matches("schema_name", parts[0])
        where.append(
            f"({_name_matches('table_schema', parts[0])} OR ({_name_matches('table_catalog', parts[0])} AND NOT "
            f"EXISTS (SELECT 1 FROM information_schema.schemata WHERE {schema})))"
        )
    return i


def _dotted_name(tokens: list[Token], i: int) -> tuple[list[tuple[str, bool]], int]:
    from sqlglot.tokens import TokenType

    parts: list[tuple[str, bool]] = []
    while i < len(tokens):
        token = tokens[i]
        quoted = token.token_type == TokenType.IDENTIFIER
        if not quoted and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", token.text):
            break
        if not quoted and token.text.upper() in ("LIKE", "STARTS", "LIMIT") and parts == []:
            break
        parts.append((token.text, quoted))
        i += 1
        if i < len(tokens) and tokens[i].token_type == TokenType.DOT:
            i += 1
        else:
            break
    return parts, i


def _name_matches(column: str, part: tuple[str, bool]) -> str:
    # Unquoted names match as DuckDB resolves them (case-insensitively); quoted names match exactly.
    name, quoted = part
    return f"{column} = {_sql_string(name)}" if quoted else f"lower({column}) = lower({_sql_string(name)})"


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --- result column names --------------------------------------------------------------------------

_PROJECTION_END = frozenset(
    {"FROM", "WHERE", "GROUP", "HAVING", "QUALIFY", "ORDER", "LIMIT", "UNION", "EXCEPT", "MINUS", "INTERSECT"}
    | {"WINDOW", "FETCH", "OFFSET", "INTO"}
)


def _name_projections(tree: exp.Expr, text: str, tokens: list[Token]) -> None:
    """Name the outermost SELECT's columns as Snowflake does: unquoted names upper-case, expressions by text."""
    from sqlglot import exp

    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this
    if not isinstance(select, exp.Select):
        return
    texts = _projection_texts(text, tokens)
    if texts is not None and len(texts) != len(select.expressions):
        texts = None
    for i, projection in enumerate(list(select.expressions)):
        if isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
        ):
            continue
        if isinstance(projection, exp.Alias):
            alias = projection.args.get("alias")
            if isinstance(alias, exp.Identifier) and not alias.quoted:
                projection.set("alias", exp.to_identifier(alias.name.upper(), quoted=True))
            continue
        if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Identifier):
            name = projection.this
            if not name.quoted:
                projection.replace(exp.alias_(projection.copy(), name.name.upper(), quoted=True))
            continue
        if texts is not None:
            projection.replace(exp.alias_(projection.copy(), texts[i], quoted=True))


def _projection_texts(text: str, tokens: list[Token]) -> list[str] | None:
    """The outermost SELECT list's expressions as Snowflake names them (upper-case, quoted names kept)."""
    from sqlglot.tokens import TokenType

    depth, start = 0, None
    for i, token in enumerate(tokens):
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and token.token_type == TokenType.SELECT:
            start = i + 1
            break
    if start is None:
        return None
    said = words(tokens)
    if said[start : start + 1] in (["DISTINCT"], ["ALL"]):
        start += 1
    if said[start : start + 1] == ["TOP"]:
        start += 2
    segments: list[list[Token]] = [[]]
    depth = 0
    for i in range(start, len(tokens)):
        token = tokens[i]
        if token.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET):
            depth += 1
        elif token.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
        elif depth == 0 and said[i] in _PROJECTION_END:
            break
        if depth == 0 and token.token_type == TokenType.COMMA:
            segments.append([])
        else:
            segments[-1].append(token)
    if not all(segments):
        return None
    names = []
    for segment in segments:
        parts, position = [], segment[0].start
        for token in segment:
            parts.append(" " if position < token.start else "")
            piece = text[token.start : token.end + 1]
            parts.append(piece if token.token_type == TokenType.IDENTIFIER else piece.upper())
            position = token.end + 1
        names.append("".join(parts))
    return names


# --- tables and table functions -------------------------------------------------------------------


def resolve_identifier(node: exp.DynamicIdentifier) -> exp.Table:
    """IDENTIFIER('db.schema.table') as the table it names; a bound or variable name is refused."""
    from sqlglot import exp

    literal = node.this
    if not (isinstance(literal, exp.Literal) and literal.is_string):
        refuse(
            f"IDENTIFIER({literal.sql(dialect='snowflake')[:40]}) takes its table name from a parameter or "
            "variable, so the guard cannot tell which table (or file) it names",
            "write the table name in the SQL, or pass it as IDENTIFIER('schema.table')",
        )
    try:
        return exp.to_table(literal.name, dialect="snowflake")
    except Exception:
        refuse(f"IDENTIFIER({literal.name[:60]!r}) does not name a table", "pass a name like 'schema.table'")


def _replace_identifier_table(table: exp.Table) -> None:
    resolved = resolve_identifier(table.this)
    for key in ("this", "db", "catalog"):
        table.set(key, resolved.args.get(key))


def _rewrite_table_functions(tree: exp.Expr) -> set[str]:
    """FLATTEN and SPLIT_TO_TABLE as UNNEST subqueries; returns the aliases whose VALUE is JSON."""
    from sqlglot import exp

    json_aliases: set[str] = set()
    for node in list(tree.find_all(exp.Explode, exp.SplitToTable)):
        holder = node.parent
        if not isinstance(holder, (exp.Lateral, exp.TableFromRows)) or node.arg_key != "this":
            continue
        alias = holder.args.get("alias")
        name = alias.name if alias is not None else ""
        if isinstance(node, exp.SplitToTable):
            array = _snowflake_split(node.this, node.expression)
            columns = {"INDEX": _subscripts(array, 0), "VALUE": _call("UNNEST", array)}
        else:
            array, is_json = _flatten_input(node)
            if is_json:
                json_aliases.add(name.lower())
            columns = _flatten_columns(array, alias, tree)
        select = exp.select(*(exp.alias_(value, key, quoted=True) for key, value in columns.items()))
        table_alias = exp.TableAlias(this=exp.to_identifier(name)) if name else None
        if isinstance(holder, exp.TableFromRows) and isinstance(holder.parent, exp.From):
            holder.replace(exp.Subquery(this=select, alias=table_alias))
        else:
            holder.replace(exp.Lateral(this=exp.Subquery(this=select), alias=table_alias))
    return json_aliases


def _flatten_input(node: exp.Expr) -> tuple[exp.Expr, bool]:
    from sqlglot import exp

    extra = [arg for arg in node.expressions if not (isinstance(arg, exp.Kwarg) and arg.this.name.upper() == "INPUT")]
    source = node.this
    if isinstance(source, exp.Kwarg):
        if source.this.name.upper() != "INPUT":
            extra.insert(0, source)
        source = source.expression
    if extra:
        shown = ", ".join(arg.sql(dialect="snowflake")[:40] for arg in extra)
        refuse(
            f"FLATTEN is translated for the embedded DuckDB warehouse only with INPUT => ...; not with {shown} "
            "(PATH, OUTER, RECURSIVE and MODE are not translated)",
            "flatten the array itself, e.g. FLATTEN(input => v:items); use a LEFT JOIN for OUTER",
        )
    if _is_variant(source, set()):
        return exp.Cast(this=source, to=exp.DataType.build("JSON[]", dialect="duckdb")), True
    return source, False


def _flatten_columns(array: exp.Expr, alias: exp.TableAlias | None, tree: exp.Expr) -> dict[str, exp.Expr]:
    """FLATTEN's KEY, PATH, INDEX, VALUE and THIS over a list (SEQ has no DuckDB equivalent)."""
    from sqlglot import exp

    names = [column.name for column in alias.columns] if alias is not None and alias.columns else []
    names = names or ["SEQ", "KEY", "PATH", "INDEX", "VALUE", "THIS"]
    if len(names) != 6:
        refuse("FLATTEN's output has six columns (SEQ, KEY, PATH, INDEX, VALUE, THIS)", TRANSLATE_HINT)
    seq = names[0].lower()
    if alias is not None and alias.name:
        for column in tree.find_all(exp.Column):
            if column.table.lower() == alias.name.lower() and column.name.lower() == seq:
                refuse(
                    f"FLATTEN's SEQ column ({alias.name}.{column.name}) is not available in the embedded DuckDB "
                    "warehouse",
                    "use INDEX (the position in the array) or a ROW_NUMBER() of the outer table instead",
                )
    index = _subscripts(array, -1)
    path = exp.DPipe(
        this=exp.DPipe(this=exp.Literal.string("["), expression=exp.cast(index.copy(), "VARCHAR")),
        expression=exp.Literal.string("]"),
    )
    values = [exp.cast(exp.Null(), "VARCHAR"), path, index, _call("UNNEST", array), array.copy()]
    return dict(zip(names[1:], values, strict=True))


def _subscripts(array: exp.Expr, offset: int) -> exp.Expr:
    from sqlglot import exp

    subscripts = _call("GENERATE_SUBSCRIPTS", array, exp.Literal.number(1))
    if offset == 0:
        return subscripts
    return exp.Sub(this=subscripts, expression=exp.Literal.number(-offset))


def _call(name: str, *args: exp.Expr) -> exp.Expr:
    from sqlglot import exp

    return exp.Anonymous(this=name, expressions=[arg.copy() for arg in args])


def _snowflake_split(value: exp.Expr, delimiter: exp.Expr) -> exp.Expr:
    import sqlglot

    split = sqlglot.parse_one("SPLIT(a, b)", read="snowflake")
    split.set("this", value.copy())
    split.set("expression", delimiter.copy())
    return split


# --- expressions ----------------------------------------------------------------------------------

_STRING_TYPES = frozenset({"VARCHAR", "CHAR", "TEXT", "NVARCHAR", "NCHAR", "BPCHAR", "NAME"})
_JSON_TYPES = frozenset({"JSON", "VARIANT", "OBJECT", "STRUCT", "MAP"})
_STRING_FUNCTIONS = frozenset({"AS_VARCHAR", "AS_CHAR"})


def _is_variant(node: exp.Expr, json_aliases: set[str]) -> bool:
    """Expressions Snowflake types VARIANT that DuckDB holds as JSON."""
    from sqlglot import exp

    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.JSONExtract) and node.args.get("variant_extract"):
        return True
    if isinstance(node, exp.ParseJSON):
        return True
    return (
        isinstance(node, exp.Column)
        and node.table.lower() in json_aliases
        and node.name.lower() in ("value", "this")
        and (node.table != "" or "" in json_aliases)
    )


def _as_string(node: exp.Expr) -> exp.Expr:
    """The JSON value as Snowflake's VARIANT-to-text gives it: a string without quotes, others as JSON."""
    from sqlglot import exp

    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.JSONExtract):
        return exp.JSONExtractScalar(this=node.this.copy(), expression=node.expression.copy())
    root = exp.JSONPath(expressions=[exp.JSONPathRoot()])
    return exp.JSONExtractScalar(this=node.copy(), expression=root)


def _rewrite_node(node: exp.Expr, json_aliases: set[str]) -> None:
    from sqlglot import exp

    if isinstance(node, exp.Cast) and _is_variant(node.this, json_aliases):
        target = node.to
        if target.is_type(exp.DType.ARRAY) and not target.expressions:
            node.set("to", exp.DataType.build("JSON[]", dialect="duckdb"))
        elif target.this.name not in _JSON_TYPES and not target.args.get("nested"):
            # Scalars are read from the JSON text (->>), so a JSON string casts without its quotes.
            node.set("this", _as_string(node.this))
    elif isinstance(node, exp.Cast) and node.to.is_type(exp.DType.ARRAY) and not node.to.expressions:
        node.replace(node.this)  # already an array: Snowflake's ::ARRAY changes nothing
    elif isinstance(node, exp.ToChar):
        _rewrite_to_char(node)
    elif isinstance(node, exp.Anonymous):
        _rewrite_function(node, json_aliases)
    elif isinstance(node, exp.ObjectAgg):
        node.replace(_object_agg(node))
    elif isinstance(node, exp.TableSample) and node.args.get("size") is not None:
        method = node.args.get("method")
        if method is None or method.name.upper() in ("BERNOULLI", "ROW"):
            node.set("method", exp.Var(this="RESERVOIR"))  # a fixed number of rows, as Snowflake samples it


def _object_agg(node: exp.ObjectAgg) -> exp.Expr:
    """OBJECT_AGG(k, v) as a JSON object from a map of the pairs (NULL keys and values skipped, as Snowflake)."""
    from sqlglot import exp

    if isinstance(node.parent, exp.Window):
        refuse("OBJECT_AGG(...) OVER (...) is not translated for the embedded DuckDB warehouse", TRANSLATE_HINT)
    key, value = node.this, node.expression
    keep = exp.and_(
        exp.Not(this=exp.Is(this=key.copy(), expression=exp.Null())),
        exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())),
    )

    def listed(part: exp.Expr) -> exp.Expr:
        return exp.Filter(this=_call("LIST", part), expression=exp.Where(this=keep.copy()))

    pairs = _call("TO_JSON", _call("MAP", listed(key), listed(value)))
    empty = exp.cast(exp.Literal.string("{}"), "JSON")
    return exp.Coalesce(this=pairs, expressions=[empty])


def _rewrite_function(node: exp.Anonymous, json_aliases: set[str]) -> None:
    from sqlglot import exp

    name = node.name.upper()
    if name in _STRING_FUNCTIONS and len(node.expressions) == 1:
        value = node.expressions[0]
        json_value = value if _is_variant(value, json_aliases) else exp.cast(value.copy(), "JSON")
        is_string = exp.EQ(this=_call("JSON_TYPE", json_value), expression=exp.Literal.string("VARCHAR"))
        node.replace(exp.Case(ifs=[exp.If(this=is_string, true=_as_string(json_value))]))
    elif name.startswith("AS_") and name != "AS_VARCHAR":
        refuse(
            f"{name}() is not translated for the embedded DuckDB warehouse",
            f"cast instead (e.g. v:field::NUMBER or ::DATE), which is translated; {TRANSLATE_HINT}",
        )
    elif name == "RATIO_TO_REPORT" and isinstance(node.parent, exp.Window) and len(node.expressions) == 1:
        window = node.parent
        if window.args.get("order"):
            refuse("RATIO_TO_REPORT takes no ORDER BY in its window", "remove the ORDER BY from OVER (...)")
        total = window.copy()
        total.set("this", exp.Sum(this=node.expressions[0].copy()))
        share = exp.Nullif(this=total, expression=exp.Literal.number(0))
        ratio = exp.Div(this=node.expressions[0].copy(), expression=share)
        window.replace(exp.Paren(this=ratio))


# --- TO_CHAR with a format ------------------------------------------------------------------------

# Snowflake date and time format elements and their strftime equivalents, longest first.
_DATE_ELEMENTS: tuple[tuple[str, str], ...] = (
    ("YYYY", "%Y"),
    ("MMMM", "%B"),
    ("HH24", "%H"),
    ("HH12", "%I"),
    ("FF9", "%n"),
    ("FF6", "%f"),
    ("FF3", "%g"),
    ("MON", "%b"),
    ("FF", "%n"),
    ("YY", "%y"),
    ("MM", "%m"),
    ("DD", "%d"),
    ("DY", "%a"),
    ("MI", "%M"),
    ("SS", "%S"),
    ("AM", "%p"),
    ("PM", "%p"),
)
_NUMBER_FORMAT = re.compile(r"[\s09,.$SDGXVLBMIEF]+", re.IGNORECASE)


def _rewrite_to_char(node: exp.ToChar) -> None:
    from sqlglot import exp

    fmt = node.args.get("format")
    if fmt is None:
        return
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        refuse(
            "TO_CHAR/TO_VARCHAR with a format that is not a quoted literal cannot be translated",
            "write the format as a literal, e.g. TO_CHAR(d, 'YYYY-MM')",
        )
    node.replace(_call("STRFTIME", node.this, exp.Literal.string(strftime_format(fmt.name))))


def strftime_format(fmt: str) -> str:
    """A Snowflake date/time format as a strftime format; refuses what has no faithful equivalent."""
    out: list[str] = []
    i = 0
    while i < len(fmt):
        char = fmt[i]
        if char == '"':
            end = fmt.find('"', i + 1)
            if end == -1:
                refuse(f"the format {fmt!r} has an unclosed double quote", "close the quoted text in the format")
            out.append(fmt[i + 1 : end].replace("%", "%%"))
            i = end + 1
            continue
        if not char.isalpha():
            if char.isdigit() and _NUMBER_FORMAT.fullmatch(fmt):
                _refuse_number_format(fmt)
            out.append("%%" if char == "%" else char)
            i += 1
            continue
        for element, code in _DATE_ELEMENTS:
            if fmt[i : i + len(element)].upper() == element:
                out.append(code)
                i += len(element)
                break
        else:
            if _NUMBER_FORMAT.fullmatch(fmt):
                _refuse_number_format(fmt)
            unknown = re.match(r"[A-Za-z]+[0-9]?", fmt[i:])
            shown = unknown.group() if unknown else char
            refuse(
                f"the format element {shown!r} in TO_CHAR(..., {fmt!r}) has no faithful DuckDB equivalent (the "
                "embedded warehouse maps YYYY, YY, MM, MON, MMMM, DD, DY, HH24, HH12, AM/PM, MI, SS, FF, "
                "FF3, FF6, FF9)",
                "build the text from the mapped elements, or from parts: e.g. EXTRACT(quarter FROM d) for a quarter",
            )
    return "".join(out)


def _refuse_number_format(fmt: str) -> Any:
    refuse(
        f"TO_CHAR with the number format {fmt!r} is not translated for the embedded DuckDB warehouse",
        "use TO_CHAR(ROUND(x, 2)) for a plain decimal, or format the number where it is shown",
    )
