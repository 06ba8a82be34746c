"""Catalogue tools: list databases, schemas and tables, describe a table."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from sophia_shared.errors import InputError
from sophia_shared.server import ToolResult, sophia_tool

from ..backends.base import Warehouse
from .common import on_warehouse, render_table

_IDENT = "Identifiers are matched as the warehouse stores them (Snowflake: usually UPPER case)."


class DatabaseList(ToolResult):
    backend: str
    databases: list[str]

    def render_text(self) -> str:
        return f"{len(self.databases)} database(s) on {self.backend}: " + ", ".join(self.databases)


class SchemaList(ToolResult):
    database: str
    schemas: list[str]

    def render_text(self) -> str:
        return f"{len(self.schemas)} schema(s) in {self.database}: " + ", ".join(self.schemas)


class TableEntry(BaseModel):
    schema_name: str = Field(description="Schema the table lives in.")
    name: str
    kind: str = Field(description="TABLE or VIEW.")
    row_count: int = Field(description="Approximate row count; -1 when the warehouse does not say.")
    comment: str


class TableList(ToolResult):
    database: str
    tables: list[TableEntry]

    def render_text(self) -> str:
        rows = [
            [f"{t.schema_name}.{t.name}", t.kind, "" if t.row_count < 0 else t.row_count, t.comment]
            for t in self.tables
        ]
        return f"{len(self.tables)} table(s) in {self.database}:\n" + render_table(
            ["table", "kind", "rows", "comment"], rows
        )


class ColumnEntry(BaseModel):
    name: str
    type: str
    nullable: bool
    comment: str


class TableDescription(ToolResult):
    database: str
    schema_name: str
    table: str
    columns: list[ColumnEntry]

    def render_text(self) -> str:
        rows = [[c.name, c.type, "yes" if c.nullable else "no", c.comment] for c in self.columns]
        return f"{self.database}.{self.schema_name}.{self.table} ({len(self.columns)} columns):\n" + render_table(
            ["column", "type", "nullable", "comment"], rows
        )


def _default_database(wh: Warehouse) -> str:
    default = wh.default_database()
    if default:
        return default
    databases = wh.list_databases()
    if len(databases) == 1:
        return databases[0]
    raise InputError(
        "No default database is set and more than one is available; say which one.",
        hint="Pass database=… (see warehouse_list_databases), or set SNOWFLAKE_DATABASE: " + ", ".join(databases[:20]),
    )


@sophia_tool("warehouse_list_databases", title="List warehouse databases", read_only=True)
async def warehouse_list_databases(ctx: Context[Any, Any]) -> DatabaseList:
    """List the databases the business warehouse exposes to this user.

    Start here when you do not know where the data lives, then call warehouse_list_schemas and
    warehouse_list_tables.
    """
    return await on_warehouse(ctx, lambda wh, _: DatabaseList(backend=wh.kind, databases=wh.list_databases()))


@sophia_tool("warehouse_list_schemas", title="List schemas in a database", read_only=True)
async def warehouse_list_schemas(
    ctx: Context[Any, Any],
    database: Annotated[str, Field(description=f"Database to look in; empty for the default. {_IDENT}")] = "",
) -> SchemaList:
    """List the schemas of one database in the business warehouse."""

    def action(wh: Any, _: Any) -> SchemaList:
        db = database or _default_database(wh)
        return SchemaList(database=db, schemas=wh.list_schemas(db))

    return await on_warehouse(ctx, action)


@sophia_tool("warehouse_list_tables", title="List tables and views", read_only=True)
async def warehouse_list_tables(
    ctx: Context[Any, Any],
    database: Annotated[str, Field(description=f"Database to look in; empty for the default. {_IDENT}")] = "",
    schema: Annotated[str, Field(description="Schema to list; empty lists every schema of the database.")] = "",
) -> TableList:
    """List tables and views (with kind, approximate row count and comment) in the business warehouse.

    Use the names it returns in warehouse_describe_table and in SQL as SCHEMA.TABLE.
    """

    def action(wh: Any, _: Any) -> TableList:
        db = database or _default_database(wh)
        schemas = [schema] if schema else wh.list_schemas(db)
        tables = [t for s in schemas for t in wh.list_tables(db, s)]
        return TableList(
            database=db,
            tables=[
                TableEntry(
                    schema_name=t.schema,
                    name=t.name,
                    kind=t.kind,
                    row_count=-1 if t.row_count is None else int(t.row_count),
                    comment=t.comment,
                )
                for t in tables
            ],
        )

    return await on_warehouse(ctx, action)


@sophia_tool("warehouse_describe_table", title="Describe a table's columns", read_only=True)
async def warehouse_describe_table(
    ctx: Context[Any, Any],
    table: Annotated[
        str,
        Field(description="Table or view name; may be qualified as SCHEMA.TABLE or DATABASE.SCHEMA.TABLE."),
    ],
    database: Annotated[str, Field(description="Database, when `table` does not name it.")] = "",
    schema: Annotated[str, Field(description="Schema, when `table` does not name it.")] = "",
) -> TableDescription:
    """Describe a table or view: its columns in order, with type, nullability and comment.

    Call this before writing SQL against a table you have not seen.
    """
    parts = [p.strip().strip('"') for p in table.split(".")]
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise InputError(f"'{table}' is not a table name.", hint="Use TABLE, SCHEMA.TABLE or DATABASE.SCHEMA.TABLE.")

    def action(wh: Any, _: Any) -> TableDescription:
        name = parts[-1]
        sch = parts[-2] if len(parts) >= 2 else schema
        db = parts[0] if len(parts) == 3 else (database or _default_database(wh))
        if not sch:
            matches = [
                s for s in wh.list_schemas(db) if any(t.name.lower() == name.lower() for t in wh.list_tables(db, s))
            ]
            if len(matches) != 1:
                raise InputError(
                    f"Say which schema holds '{name}'"
                    + (f" (found in {', '.join(matches)})." if matches else " — no schema has it."),
                    hint="Qualify the table as SCHEMA.TABLE; warehouse_list_tables shows where tables live.",
                )
            sch = matches[0]
        columns = wh.describe_table(db, sch, name)
        if not columns:
            raise InputError(
                f"No table or view '{db}.{sch}.{name}' is visible.",
                hint="Check the name with warehouse_list_tables (names are case-sensitive on Snowflake when quoted).",
            )
        return TableDescription(
            database=db,
            schema_name=sch,
            table=name,
            columns=[ColumnEntry(name=c.name, type=c.type, nullable=c.nullable, comment=c.comment) for c in columns],
        )

    return await on_warehouse(ctx, action)
