"""Catalogue tools: list databases, schemas and tables, describe a table. Every list pages."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from sophia_shared.errors import InputError
from sophia_shared.output import Page, page_of
from sophia_shared.server import ToolResult, sophia_tool

from ..backends.base import Warehouse
from ..names import (
    WAREHOUSE_DESCRIBE_TABLE,
    WAREHOUSE_LIST_DATABASES,
    WAREHOUSE_LIST_SCHEMAS,
    WAREHOUSE_LIST_TABLES,
)
from .common import Cursor, on_warehouse, paging_note, render_table

PAGE_SIZE = 200
_IDENT = "Identifiers are matched as the warehouse stores them (Snowflake: usually UPPER case)."


class DatabaseList(ToolResult, Page[str]):
    backend: str

    def render_text(self) -> str:
        note = paging_note(
            WAREHOUSE_LIST_DATABASES, truncated=self.truncated, next_cursor=self.next_cursor,
            shown=len(self.items), what=f"database(s) on {self.backend}",
        )  # fmt: skip
        return f"{note}\n" + ", ".join(self.items)


class SchemaList(ToolResult, Page[str]):
    database: str

    def render_text(self) -> str:
        note = paging_note(
            WAREHOUSE_LIST_SCHEMAS, truncated=self.truncated, next_cursor=self.next_cursor,
            shown=len(self.items), what=f"schema(s) in {self.database}",
        )  # fmt: skip
        return f"{note}\n" + ", ".join(self.items)


class TableEntry(BaseModel):
    schema_name: str = Field(description="Schema the table lives in.")
    name: str
    kind: str = Field(description="TABLE or VIEW.")
    row_count: int = Field(description="Approximate row count; -1 when the warehouse does not say.")
    comment: str


class TableList(ToolResult, Page[TableEntry]):
    database: str

    def render_text(self) -> str:
        rows = [
            [f"{t.schema_name}.{t.name}", t.kind, "" if t.row_count < 0 else t.row_count, t.comment] for t in self.items
        ]
        note = paging_note(
            WAREHOUSE_LIST_TABLES, truncated=self.truncated, next_cursor=self.next_cursor,
            shown=len(self.items), what=f"table(s) in {self.database}",
        )  # fmt: skip
        return f"{note}\n" + render_table(["table", "kind", "rows", "comment"], rows)


class ColumnEntry(BaseModel):
    name: str
    type: str
    nullable: bool
    comment: str


class TableDescription(ToolResult, Page[ColumnEntry]):
    database: str
    schema_name: str
    table: str

    def render_text(self) -> str:
        rows = [[c.name, c.type, "yes" if c.nullable else "no", c.comment] for c in self.items]
        note = paging_note(
            WAREHOUSE_DESCRIBE_TABLE, truncated=self.truncated, next_cursor=self.next_cursor,
            shown=len(self.items), what="column(s)",
        )  # fmt: skip
        return f"{self.database}.{self.schema_name}.{self.table}: {note}\n" + render_table(
            ["column", "type", "nullable", "comment"], rows
        )


# --- the logic, callable without MCP ----------------------------------------------------------------


def resolve_database(wh: Warehouse, database: str) -> str:
    """The database a call means: the one given, the session default, or the only one there is."""
    if database:
        return database
    default = wh.default_database()
    if default:
        return default
    databases = wh.list_databases()
    if len(databases) == 1:
        return databases[0]
    raise InputError(
        "No default database is set and more than one is available; say which one.",
        hint=f"Pass database=… (see {WAREHOUSE_LIST_DATABASES}), or set SNOWFLAKE_DATABASE: "
        + ", ".join(databases[:20]),
    )


def list_databases(wh: Warehouse, *, cursor: str = "") -> DatabaseList:
    page = page_of(wh.list_databases(), cursor=cursor, request=(WAREHOUSE_LIST_DATABASES,), page_size=PAGE_SIZE)
    return DatabaseList(backend=wh.kind, items=page.items, truncated=page.truncated, next_cursor=page.next_cursor)


def list_schemas(wh: Warehouse, *, database: str = "", cursor: str = "") -> SchemaList:
    db = resolve_database(wh, database)
    page = page_of(wh.list_schemas(db), cursor=cursor, request=(WAREHOUSE_LIST_SCHEMAS, db), page_size=PAGE_SIZE)
    return SchemaList(database=db, items=page.items, truncated=page.truncated, next_cursor=page.next_cursor)


def list_tables(wh: Warehouse, *, database: str = "", schema: str = "", cursor: str = "") -> TableList:
    db = resolve_database(wh, database)
    schemas = [schema] if schema else wh.list_schemas(db)
    entries = [
        TableEntry(
            schema_name=t.schema,
            name=t.name,
            kind=t.kind,
            row_count=-1 if t.row_count is None else int(t.row_count),
            comment=t.comment,
        )
        for s in schemas
        for t in wh.list_tables(db, s)
    ]
    page = page_of(entries, cursor=cursor, request=(WAREHOUSE_LIST_TABLES, db, schema), page_size=PAGE_SIZE)
    return TableList(database=db, items=page.items, truncated=page.truncated, next_cursor=page.next_cursor)


def split_table_name(table: str) -> list[str]:
    """`DB.SCHEMA.TABLE` → its parts; quoted parts may hold dots."""
    parts: list[str] = []
    current, quoted, i = "", False, 0
    while i < len(table):
        char = table[i]
        if char == '"':
            if quoted and table[i + 1 : i + 2] == '"':
                current += '"'
                i += 1
            else:
                quoted = not quoted
        elif char == "." and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += char
        i += 1
    parts.append(current.strip())
    if quoted or not 1 <= len(parts) <= 3 or not all(parts):
        raise InputError(f"'{table}' is not a table name.", hint="Use TABLE, SCHEMA.TABLE or DATABASE.SCHEMA.TABLE.")
    return parts


def describe_table(
    wh: Warehouse, *, table: str, database: str = "", schema: str = "", cursor: str = ""
) -> TableDescription:
    parts = split_table_name(table)
    name = parts[-1]
    sch = parts[-2] if len(parts) >= 2 else schema
    db = parts[0] if len(parts) == 3 else resolve_database(wh, database)
    if not sch:
        matches = [s for s in wh.list_schemas(db) if any(t.name.lower() == name.lower() for t in wh.list_tables(db, s))]
        if len(matches) != 1:
            raise InputError(
                f"Say which schema holds '{name}'"
                + (f" (found in {', '.join(matches)})." if matches else " — no schema has it."),
                hint=f"Qualify the table as SCHEMA.TABLE; {WAREHOUSE_LIST_TABLES} shows where tables live.",
            )
        sch = matches[0]
    columns = wh.describe_table(db, sch, name)
    if not columns:
        raise InputError(
            f"No table or view '{db}.{sch}.{name}' is visible.",
            hint=f"Check the name with {WAREHOUSE_LIST_TABLES} (names are case-sensitive on Snowflake when quoted).",
        )
    entries = [ColumnEntry(name=c.name, type=c.type, nullable=c.nullable, comment=c.comment) for c in columns]
    page = page_of(entries, cursor=cursor, request=(WAREHOUSE_DESCRIBE_TABLE, db, sch, name), page_size=PAGE_SIZE)
    return TableDescription(
        database=db, schema_name=sch, table=name, items=page.items, truncated=page.truncated,
        next_cursor=page.next_cursor,
    )  # fmt: skip


# --- the MCP tools --------------------------------------------------------------------------------


@sophia_tool(WAREHOUSE_LIST_DATABASES, title="List warehouse databases", read_only=True)
async def warehouse_list_databases(ctx: Context[Any, Any], cursor: Cursor = "") -> DatabaseList:
    """List the databases the business warehouse exposes to this user (paged: 200 per page).

    Start here when you do not know where the data lives, then call warehouse_list_schemas and
    warehouse_list_tables.
    """
    return await on_warehouse(ctx, lambda wh, _: list_databases(wh, cursor=cursor))


@sophia_tool(WAREHOUSE_LIST_SCHEMAS, title="List schemas in a database", read_only=True)
async def warehouse_list_schemas(
    ctx: Context[Any, Any],
    database: Annotated[str, Field(description=f"Database to look in; empty for the default. {_IDENT}")] = "",
    cursor: Cursor = "",
) -> SchemaList:
    """List the schemas of one database in the business warehouse (paged: 200 per page)."""
    return await on_warehouse(ctx, lambda wh, _: list_schemas(wh, database=database, cursor=cursor))


@sophia_tool(WAREHOUSE_LIST_TABLES, title="List tables and views", read_only=True)
async def warehouse_list_tables(
    ctx: Context[Any, Any],
    database: Annotated[str, Field(description=f"Database to look in; empty for the default. {_IDENT}")] = "",
    schema: Annotated[str, Field(description="Schema to list; empty lists every schema of the database.")] = "",
    cursor: Cursor = "",
) -> TableList:
    """List tables and views (with kind, approximate row count and comment) in the business warehouse.

    Paged: 200 per page; when `truncated` is true, call again with `cursor` set to `next_cursor`.
    Use the names it returns in warehouse_describe_table and in SQL as SCHEMA.TABLE.
    """
    return await on_warehouse(ctx, lambda wh, _: list_tables(wh, database=database, schema=schema, cursor=cursor))


@sophia_tool(WAREHOUSE_DESCRIBE_TABLE, title="Describe a table's columns", read_only=True)
async def warehouse_describe_table(
    ctx: Context[Any, Any],
    table: Annotated[
        str,
        Field(description="Table or view name; may be qualified as SCHEMA.TABLE or DATABASE.SCHEMA.TABLE."),
    ],
    database: Annotated[str, Field(description="Database, when `table` does not name it.")] = "",
    schema: Annotated[str, Field(description="Schema, when `table` does not name it.")] = "",
    cursor: Cursor = "",
) -> TableDescription:
    """Describe a table or view: its columns in order, with type, nullability and comment (paged: 200 per page).

    Call this before writing SQL against a table you have not seen.
    """
    split_table_name(table)  # bad names fail before any warehouse work
    return await on_warehouse(
        ctx,
        lambda wh, _: describe_table(wh, table=table, database=database, schema=schema, cursor=cursor),
    )
