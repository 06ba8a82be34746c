"""Each kind of DuckDB failure reaches the agent with a hint that fits it, not one hint for all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from sophia_business_intelligence.backends.base import CancelToken
from sophia_business_intelligence.backends.duckdb import DuckDBConfig, DuckDBWarehouse
from sophia_business_intelligence.demo_data import load_demo_dataset
from sophia_business_intelligence.names import WAREHOUSE_DESCRIBE_TABLE, WAREHOUSE_LIST_TABLES
from sophia_business_intelligence.sql_guard import check_read_only
from sophia_shared.errors import BackendError, SophiaError

FUNCTION_DOC = "docs/snowflake-sql-on-duckdb.md"


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wh") / "wh.duckdb"
    load_demo_dataset(path)
    return path


@pytest.fixture
def warehouse(demo_file: Path) -> Iterator[DuckDBWarehouse]:
    opened = DuckDBWarehouse(demo_file)
    yield opened
    opened.close()


def _failure(warehouse: DuckDBWarehouse, sql: str, params: list[object] | None = None) -> SophiaError:
    statement = check_read_only(sql, dialect="duckdb")
    with pytest.raises(SophiaError) as caught:
        warehouse.query(statement, params=params or [], offset=0, max_rows=10, handle="", cancel=CancelToken())
    return caught.value


def test_a_missing_table_points_at_the_table_list(warehouse: DuckDBWarehouse) -> None:
    hint = _failure(warehouse, "SELECT * FROM CRM.NO_SUCH_TABLE").hint
    assert WAREHOUSE_LIST_TABLES in hint


def test_a_missing_column_points_at_describe_table(warehouse: DuckDBWarehouse) -> None:
    hint = _failure(warehouse, "SELECT NO_SUCH_COLUMN FROM CRM.DEALS").hint
    assert WAREHOUSE_DESCRIBE_TABLE in hint


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT HAVERSINE(1, 2, 3, 4) AS H",
        "SELECT NO_SUCH_FUNCTION(1) AS X",
    ],
)
def test_a_missing_function_says_it_is_not_on_the_embedded_warehouse(warehouse: DuckDBWarehouse, sql: str) -> None:
    hint = _failure(warehouse, sql).hint
    assert "not available on the embedded warehouse" in hint
    assert FUNCTION_DOC in hint
    assert WAREHOUSE_LIST_TABLES not in hint


@pytest.mark.parametrize(("sql", "params"), [("SELECT ? + ? AS X", [1]), ("SELECT 1 AS X", [1])])
def test_a_parameter_count_mismatch_explains_params(warehouse: DuckDBWarehouse, sql: str, params: list[object]) -> None:
    hint = _failure(warehouse, sql, params).hint
    assert "one value per ? placeholder" in hint


def test_a_type_mismatch_suggests_a_cast(warehouse: DuckDBWarehouse) -> None:
    hint = _failure(warehouse, "SELECT LPAD(MONTH(CURRENT_DATE), 2, '0') AS M").hint
    assert "cast" in hint.lower()
    assert WAREHOUSE_LIST_TABLES not in hint


def test_a_failed_conversion_suggests_try_cast(warehouse: DuckDBWarehouse) -> None:
    hint = _failure(warehouse, "SELECT 'abc'::INT AS X").hint
    assert "TRY_CAST" in hint


def test_an_overflow_suggests_a_wider_type(warehouse: DuckDBWarehouse) -> None:
    hint = _failure(warehouse, "SELECT 2147483647::INT + 1 AS X").hint
    assert "wider" in hint


def test_running_out_of_memory_names_the_memory_setting(tmp_path: Path) -> None:
    config = DuckDBConfig.for_path(tmp_path / "wh.duckdb", memory_limit="20MB", threads=1)
    warehouse = DuckDBWarehouse(config, writable=True)
    # An aggregate into one list cannot spill to disk, so it needs the memory itself.
    failure = _failure(warehouse, "SELECT ARRAY_AGG(MD5(CAST(R.RANGE AS VARCHAR))) AS L FROM RANGE(3000000) R")
    warehouse.close()
    assert isinstance(failure, BackendError)
    assert "20MB" in failure.message
    assert "SOPHIA_DUCKDB_MEMORY_LIMIT" in failure.hint
    assert "SET memory_limit" not in failure.agent_message()  # DuckDB's advice cannot be followed


def test_running_out_of_spill_space_names_the_temp_size_setting(tmp_path: Path) -> None:
    # How much a query spills depends on the machine, so DuckDB's message is given, not provoked.
    warehouse = DuckDBWarehouse(DuckDBConfig.for_path(tmp_path / "wh.duckdb", max_temp_size="1GB"))
    error = duckdb.OutOfMemoryException(
        "Out of Memory Error: failed to offload data block of size 256.0 KiB (1.0 GiB/1.0 GiB used).\n"
        "This limit was set by the 'max_temp_directory_size' setting.\n"
        "You can adjust this setting, by using (for example) PRAGMA max_temp_directory_size='10GiB'"
    )
    failure = warehouse._translate(error, timed_out=False)
    assert "SOPHIA_DUCKDB_MAX_TEMP_SIZE" in failure.hint
    assert "1GB" in failure.message
    assert "PRAGMA" not in failure.agent_message()
