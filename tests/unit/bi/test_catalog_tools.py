"""The catalogue tools' logic, called directly on a real DuckDB warehouse with the demo data."""

from __future__ import annotations

from pathlib import Path

import pytest

from sophia_business_intelligence.backends.duckdb import DuckDBWarehouse
from sophia_business_intelligence.demo_data import load_demo_dataset
from sophia_business_intelligence.settings import SETTINGS
from sophia_business_intelligence.tools import catalog
from sophia_shared.errors import InputError
from sophia_shared.settings import Settings


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    load_demo_dataset(tmp_path / "wh.duckdb")
    settings = Settings(environ={"SOPHIA_DUCKDB_PATH": str(tmp_path / "wh.duckdb")}, specs=SETTINGS)
    wh = DuckDBWarehouse.from_settings(settings, writable=False)
    yield wh
    wh.close()


def test_list_tables_without_a_schema_walks_every_schema(warehouse: DuckDBWarehouse) -> None:
    result = catalog.list_tables(warehouse)
    names = {f"{t.schema_name}.{t.name}" for t in result.items}
    assert {"CRM.DEALS", "CRM.ACCOUNTS", "CALLS.TRANSCRIPTS", "TEAM.MESSAGES"} <= names
    assert not result.truncated and result.next_cursor == ""
    assert all(t.row_count > 0 for t in result.items)


def test_list_tables_pages_when_there_are_more_than_a_page(
    warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog, "PAGE_SIZE", 3)
    first = catalog.list_tables(warehouse)
    assert len(first.items) == 3 and first.truncated
    rest = catalog.list_tables(warehouse, cursor=first.next_cursor)
    assert {t.name for t in first.items}.isdisjoint({t.name for t in rest.items})
    assert "cursor=" in first.render_text()
    with pytest.raises(InputError, match="different request"):
        catalog.list_tables(warehouse, schema="CRM", cursor=first.next_cursor)


def test_list_schemas_includes_the_demo_schemas(warehouse: DuckDBWarehouse) -> None:
    result = catalog.list_schemas(warehouse)
    assert {"CRM", "CALLS", "TEAM"} <= set(result.items)
    assert result.database == warehouse.default_database()


def test_describe_table_finds_the_schema_when_only_one_has_the_table(warehouse: DuckDBWarehouse) -> None:
    result = catalog.describe_table(warehouse, table="deals")
    assert result.schema_name == "CRM" and result.table == "deals"
    assert [c.name for c in result.items][:2] == ["DEAL_ID", "ACCOUNT_ID"]


def test_describe_table_accepts_quoted_parts_with_dots() -> None:
    assert catalog.split_table_name('CRM."odd.name"') == ["CRM", "odd.name"]
    assert catalog.split_table_name('"a""b"') == ['a"b']
    for bad in ("", "a..b", "a.b.c.d", '"open'):
        with pytest.raises(InputError, match="not a table name"):
            catalog.split_table_name(bad)


def test_describe_table_of_a_missing_table_names_the_list_tool(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(InputError) as raised:
        catalog.describe_table(warehouse, table="CRM.NOPE")
    assert "warehouse_list_tables" in raised.value.agent_message()
    with pytest.raises(InputError, match="no schema has it"):
        catalog.describe_table(warehouse, table="NOPE")


class TwoDatabases:
    """Just enough of a warehouse to have no default database and two to choose from."""

    def default_database(self) -> str:
        return ""

    def list_databases(self) -> list[str]:
        return ["SALES", "FINANCE"]


def test_a_missing_database_is_refused_when_several_exist_and_none_is_default() -> None:
    with pytest.raises(InputError) as raised:
        catalog.resolve_database(TwoDatabases(), "")  # type: ignore[arg-type]
    message = raised.value.agent_message()
    assert "SALES, FINANCE" in message and "warehouse_list_databases" in message
    assert catalog.resolve_database(TwoDatabases(), "FINANCE") == "FINANCE"  # type: ignore[arg-type]
