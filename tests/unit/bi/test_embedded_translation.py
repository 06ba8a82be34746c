"""Snowflake SQL on the embedded warehouse: each translation runs on real DuckDB and gives Snowflake's answer.

The expected values are what Snowflake returns for the same statement on the same rows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sophia_business_intelligence.names import WAREHOUSE_LIST_SCHEMAS, WAREHOUSE_LIST_TABLES
from sophia_business_intelligence.sql_guard import check_read_only
from sophia_business_intelligence.sql_guard.rules import NESTING_HINT, PARSE_HINT
from sophia_shared.errors import PolicyError

SETUP = """
CREATE SCHEMA CRM;
CREATE SCHEMA CALLS;
CREATE TABLE CRM.ACCOUNTS (ACCOUNT_ID INTEGER, NAME VARCHAR);
CREATE TABLE CRM.DEALS (DEAL_ID INTEGER, OWNER VARCHAR, STAGE VARCHAR, AMOUNT DECIMAL(12, 2), CREATED_DATE DATE);
CREATE TABLE CALLS.TRANSCRIPTS (CALL_ID INTEGER, PARTICIPANTS VARCHAR, CALL_AT TIMESTAMP);
CREATE VIEW CRM.BIG_DEALS AS SELECT * FROM CRM.DEALS WHERE AMOUNT > 100;
INSERT INTO CRM.ACCOUNTS VALUES (1, 'Initech'), (2, 'Acme'), (3, 'Globex');
INSERT INTO CRM.DEALS VALUES
    (1, 'Ana', 'won', 100.00, DATE '2026-03-05'),
    (2, 'Ana', 'lost', 300.00, DATE '2026-03-20'),
    (3, 'Bo', 'won', 50.00, DATE '2026-04-02'),
    (4, 'Bo', 'open', 150.00, DATE '2026-04-30');
INSERT INTO CALLS.TRANSCRIPTS VALUES
    (1, 'Ana;Bo', TIMESTAMP '2026-03-05 13:04:05.123456'),
    (2, 'Bo; Cy', TIMESTAMP '2026-03-06 09:00:00'),
    (3, NULL, TIMESTAMP '2026-03-07 23:59:59');
"""


@pytest.fixture(scope="module")
def con() -> Iterator[Any]:
    connection = duckdb.connect()  # in memory: its database is named "memory"
    connection.execute(SETUP)
    yield connection
    connection.close()


def run(con: Any, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Check `sql` for the embedded warehouse and run exactly the DuckDB text the guard checked."""
    checked = check_read_only(sql, dialect="duckdb")
    cursor = con.cursor()
    cursor.execute(checked.sql, list(params) if params else None)
    return [column[0] for column in cursor.description], cursor.fetchall()


def rows(con: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    return run(con, sql, params)[1]


def value(con: Any, sql: str, params: Sequence[Any] = ()) -> Any:
    return rows(con, sql, params)[0][0]


def refused(sql: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        check_read_only(sql, dialect="duckdb")
    return caught.value


# --- M1: SHOW TABLES ------------------------------------------------------------------------------


def test_show_tables_lists_every_table_of_the_database_like_snowflake(con: Any) -> None:
    columns, found = run(con, "SHOW TABLES")
    assert columns == ["created_on", "name", "database_name", "schema_name", "kind", "comment"]
    assert [(r[3], r[1], r[4]) for r in found] == [
        ("CALLS", "TRANSCRIPTS", "TABLE"),
        ("CRM", "ACCOUNTS", "TABLE"),
        ("CRM", "DEALS", "TABLE"),
    ]  # the view BIG_DEALS is not a table: SHOW VIEWS lists it on Snowflake


@pytest.mark.parametrize(
    "sql",
    [
        "SHOW TABLES IN SCHEMA crm",
        "SHOW TABLES IN SCHEMA CRM",
        "SHOW TABLES IN crm",
        "SHOW TABLES IN memory.crm",
        "SHOW TABLES IN SCHEMA memory.CRM",
        'SHOW TABLES IN SCHEMA "CRM"',
    ],
)
def test_show_tables_in_a_schema_lists_that_schemas_tables(con: Any, sql: str) -> None:
    assert [r[1] for r in rows(con, sql)] == ["ACCOUNTS", "DEALS"]
    assert check_read_only(sql, dialect="duckdb").statement_type == "SHOW"


def test_show_tables_in_database_like_and_starts_with_filter_as_snowflake(con: Any) -> None:
    assert [r[1] for r in rows(con, "SHOW TABLES IN DATABASE memory")] == ["TRANSCRIPTS", "ACCOUNTS", "DEALS"]
    assert [r[1] for r in rows(con, "SHOW TABLES LIKE '%de%'")] == ["DEALS"]  # LIKE ignores case in SHOW
    assert [r[1] for r in rows(con, "SHOW TABLES LIKE '%A%' IN SCHEMA crm")] == ["ACCOUNTS", "DEALS"]
    assert [r[1] for r in rows(con, "SHOW TABLES STARTS WITH 'D'")] == ["DEALS"]
    assert [r[1] for r in rows(con, "SHOW TABLES STARTS WITH 'd'")] == []  # STARTS WITH is case-sensitive
    assert [r[1] for r in rows(con, "SHOW TABLES IN SCHEMA crm LIMIT 1")] == ["ACCOUNTS"]
    assert [r[1] for r in rows(con, "SHOW TABLES IN SCHEMA crm LIMIT 5 FROM 'ACCOUNTS'")] == ["DEALS"]


def test_show_terse_tables_has_snowflakes_terse_columns(con: Any) -> None:
    columns, found = run(con, "SHOW TERSE TABLES IN crm")
    assert columns == ["created_on", "name", "kind", "database_name", "schema_name"]
    assert found[0][1:] == ("ACCOUNTS", "TABLE", "memory", "CRM")


@pytest.mark.parametrize(
    "sql", ["SHOW SCHEMAS", "SHOW VIEWS", "SHOW COLUMNS IN TABLE crm.deals", "SHOW TABLES HISTORY"]
)
def test_other_show_forms_are_refused_with_the_catalog_tools(sql: str) -> None:
    error = refused(sql)
    assert WAREHOUSE_LIST_SCHEMAS in error.hint
    assert WAREHOUSE_LIST_TABLES in error.hint


# --- M2 and m14: VARIANT values as text -----------------------------------------------------------

DOC = """(SELECT PARSE_JSON('{"status": "open", "n": 5, "amt": 12.5, "d": "2026-01-02", "ok": true,
    "obj": {"e": 1}, "none": null}') AS v)"""


@pytest.mark.parametrize("cast", ["::STRING", "::VARCHAR", "::TEXT", "::VARCHAR(20)"])
def test_variant_path_cast_to_text_is_the_bare_string(con: Any, cast: str) -> None:
    assert value(con, f"SELECT v:status{cast} FROM {DOC}") == "open"
    assert value(con, f"SELECT COUNT(*) AS n FROM {DOC} WHERE v:status{cast} = 'open'") == 1


def test_variant_path_cast_to_text_of_numbers_objects_and_null_matches_snowflake(con: Any) -> None:
    assert rows(con, f"SELECT v:n::STRING, v:obj::STRING, v:none::STRING, v:missing::STRING FROM {DOC}") == [
        ("5", '{"e":1}', None, None)
    ]


def test_variant_path_casts_to_other_types_still_work(con: Any) -> None:
    assert rows(con, f"SELECT v:n::INT, v:amt::NUMBER(10, 2), v:d::DATE, v:ok::BOOLEAN FROM {DOC}") == [
        (5, Decimal("12.50"), dt.date(2026, 1, 2), True)
    ]


def test_object_construct_field_cast_to_string_has_no_quotes(con: Any) -> None:
    sql = "SELECT o:owner::STRING AS owner FROM (SELECT OBJECT_CONSTRUCT('owner', owner) AS o FROM crm.deals) LIMIT 1"
    assert value(con, sql) == "Ana"


def test_as_varchar_gives_strings_and_null_for_other_values(con: Any) -> None:
    assert rows(con, f"SELECT AS_VARCHAR(v:status), AS_VARCHAR(v:n) FROM {DOC}") == [("open", None)]


def test_other_as_functions_are_refused_with_the_cast_to_use() -> None:
    assert "::NUMBER" in refused(f"SELECT AS_INTEGER(v:n) FROM {DOC}").hint


# --- M8: TO_CHAR / TO_VARCHAR with a format -------------------------------------------------------


def test_to_varchar_with_year_month_format_groups_like_snowflake(con: Any) -> None:
    sql = (
        "SELECT TO_VARCHAR(DATE_TRUNC('month', created_date), 'YYYY-MM') AS m, COUNT(*) AS n "
        "FROM crm.deals GROUP BY 1 ORDER BY 1"
    )
    assert run(con, sql) == (["M", "N"], [("2026-03", 2), ("2026-04", 2)])


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("YYYY", "2026"),
        ("Mon DD, YYYY", "Mar 05, 2026"),
        ("MMMM", "March"),
        ("DY", "Thu"),
        ("yy/mm/dd", "26/03/05"),
        ("HH24:MI:SS", "13:04:05"),
        ("HH12 AM", "01 PM"),
        ("SS.FF3", "05.123"),
        ("SS.FF6", "05.123456"),
        ('YYYY "week" MM', "2026 week 03"),
        ("100% YYYY", "100% 2026"),
    ],
)
def test_to_char_with_date_format_matches_snowflake(con: Any, fmt: str, expected: str) -> None:
    sql = f"SELECT TO_CHAR(call_at, '{fmt}') FROM calls.transcripts WHERE call_id = 1"
    assert value(con, sql) == expected


def test_to_char_without_format_keeps_working(con: Any) -> None:
    assert value(con, "SELECT TO_CHAR(created_date) FROM crm.deals WHERE deal_id = 1") == "2026-03-05"


def test_to_char_with_number_format_is_refused_with_a_working_alternative() -> None:
    error = refused("SELECT TO_CHAR(amount, '999,999.00') FROM crm.deals")
    assert "number format '999,999.00'" in error.message
    assert "TO_CHAR(ROUND(x, 2))" in error.hint


def test_to_char_with_an_unmapped_element_is_refused_naming_it() -> None:
    error = refused("SELECT TO_CHAR(created_date, 'YYYY-Q') FROM crm.deals")
    assert "format element 'Q'" in error.message
    assert "EXTRACT(quarter FROM d)" in error.hint


# --- M9: functions sqlglot writes as lambdas ------------------------------------------------------


def test_array_to_string_of_array_agg_joins_like_snowflake(con: Any) -> None:
    sql = "SELECT ARRAY_TO_STRING(ARRAY_AGG(name) WITHIN GROUP (ORDER BY name), ', ') FROM crm.accounts"
    assert value(con, sql) == "Acme, Globex, Initech"


def test_array_to_string_writes_null_elements_as_empty(con: Any) -> None:
    assert value(con, "SELECT ARRAY_TO_STRING(ARRAY_CONSTRUCT('a', NULL, 'b'), '-')") == "a--b"


def test_array_compact_drops_nulls(con: Any) -> None:
    assert value(con, "SELECT ARRAY_COMPACT(ARRAY_CONSTRUCT(1, NULL, 2))") == [1, 2]


def test_array_distinct_keeps_one_of_each(con: Any) -> None:
    assert sorted(value(con, "SELECT ARRAY_DISTINCT(ARRAY_CONSTRUCT('A', 'A', 'B'))")) == ["A", "B"]


def test_strtok_skips_empty_tokens(con: Any) -> None:
    assert value(con, "SELECT STRTOK('a;b;;c', ';', 3)") == "c"


def test_strtok_to_array_splits_without_empty_tokens(con: Any) -> None:
    assert value(con, "SELECT STRTOK_TO_ARRAY('a;b;;c', ';')") == ["a", "b", "c"]


def test_array_intersection_keeps_duplicates_present_in_both(con: Any) -> None:
    assert value(con, "SELECT ARRAY_INTERSECTION(ARRAY_CONSTRUCT(1, 2, 2, 3), ARRAY_CONSTRUCT(2, 2, 4))") == [2, 2]


def test_filter_with_a_lambda_keeps_matching_elements(con: Any) -> None:
    assert value(con, "SELECT FILTER(ARRAY_CONSTRUCT(1, 2, 3), x -> x > 1)") == [2, 3]


def test_transform_with_a_lambda_maps_each_element(con: Any) -> None:
    assert value(con, "SELECT TRANSFORM(ARRAY_CONSTRUCT(1, 2, 3), x -> x * 2)") == [2, 4, 6]


def test_lambdas_are_written_in_duckdb_2_syntax() -> None:
    translated = check_read_only("SELECT TRANSFORM(ARRAY_CONSTRUCT(1), x -> x * 2)", dialect="duckdb").sql
    expression = translated.split(" AS ")[0]
    assert "LAMBDA x : x * 2" in expression
    assert "->" not in expression


# --- M10: FLATTEN and SPLIT_TO_TABLE --------------------------------------------------------------


def test_lateral_flatten_of_split_counts_participants_like_snowflake(con: Any) -> None:
    sql = (
        "SELECT TRIM(f.value::STRING) AS p, COUNT(*) AS calls FROM calls.transcripts t, "
        "LATERAL FLATTEN(input => SPLIT(t.participants, ';')) f GROUP BY 1 ORDER BY 1"
    )
    assert rows(con, sql) == [("Ana", 1), ("Bo", 2), ("Cy", 1)]  # the NULL row gives no rows, as in Snowflake


def test_flatten_gives_index_path_and_value(con: Any) -> None:
    sql = (
        "SELECT t.call_id, f.index, f.path, f.value FROM calls.transcripts t, "
        "LATERAL FLATTEN(input => SPLIT(t.participants, ';')) f WHERE t.call_id = 1 ORDER BY f.index"
    )
    assert rows(con, sql) == [(1, 0, "[0]", "Ana"), (1, 1, "[1]", "Bo")]


def test_table_flatten_of_parse_json_gives_its_elements(con: Any) -> None:
    sql = "SELECT f.value::INT AS v, f.index AS i FROM TABLE(FLATTEN(INPUT => PARSE_JSON('[1,2,3]'))) f ORDER BY i"
    assert rows(con, sql) == [(1, 0), (2, 1), (3, 2)]


def test_flatten_of_json_strings_casts_to_bare_strings(con: Any) -> None:
    sql = 'SELECT f.value::STRING FROM TABLE(FLATTEN(input => PARSE_JSON(\'["x", "y"]\'))) f ORDER BY 1'
    assert rows(con, sql) == [("x",), ("y",)]


def test_split_to_table_gives_one_based_index_and_value(con: Any) -> None:
    sql = (
        "SELECT t.call_id, s.index, s.value FROM calls.transcripts t, "
        "LATERAL SPLIT_TO_TABLE(t.participants, ';') s WHERE t.call_id = 2 ORDER BY s.index"
    )
    assert rows(con, sql) == [(2, 1, "Bo"), (2, 2, " Cy")]


def test_flatten_options_are_refused_with_the_real_reason() -> None:
    error = refused("SELECT f.value FROM crm.deals d, LATERAL FLATTEN(input => SPLIT(d.owner, ','), outer => TRUE) f")
    assert "OUTER" in error.message
    assert "unnest" not in (error.message + error.hint).lower()


def test_flatten_seq_column_is_refused() -> None:
    assert "SEQ" in refused("SELECT f.seq FROM TABLE(FLATTEN(input => ARRAY_CONSTRUCT(1))) f").message


def test_unknown_table_function_refusal_names_only_snowflake_functions() -> None:
    error = refused("SELECT * FROM TABLE(GET_QUERY_OPERATOR_STATS(LAST_QUERY_ID()))")
    text = error.message + error.hint
    assert "FLATTEN, SPLIT_TO_TABLE, GENERATOR" in text
    assert "unnest" not in text
    assert "duckdb_" not in text


def test_parse_json_cast_to_array_is_an_array(con: Any) -> None:
    assert rows(con, "SELECT ARRAY_SIZE(PARSE_JSON('[1,2]')::ARRAY), PARSE_JSON('[1,2]')::ARRAY[0]::INT") == [(2, 1)]


# --- m1: SAMPLE (n ROWS) --------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ["SAMPLE (3 ROWS)", "SAMPLE ROW (3 ROWS)", "TABLESAMPLE BERNOULLI (3 ROWS)"])
def test_sample_of_n_rows_returns_exactly_n_rows_of_the_table(con: Any, sample: str) -> None:
    found = rows(con, f"SELECT deal_id FROM crm.deals {sample}")
    assert len(found) == 3
    assert {r[0] for r in found} <= {1, 2, 3, 4}


# --- m3 and m4: placeholders ----------------------------------------------------------------------


def test_placeholder_the_translation_repeats_binds_its_own_value(con: Any) -> None:
    assert rows(con, "SELECT UPPER(?) AS u, LENGTH(?) AS l", ["abc", "abcd"]) == [("ABC", 4)]


def test_placeholders_inside_split_bind_in_order(con: Any) -> None:
    assert rows(con, "SELECT SPLIT(?, ?), ?", ["a,b", ",", 7]) == [(["a", "b"], 7)]


def test_placeholder_with_a_cast_parses_and_binds(con: Any) -> None:
    assert rows(con, "SELECT ?::DATE, ?::NUMBER(10, 2)", ["2026-01-01", "12.5"]) == [
        (dt.date(2026, 1, 1), Decimal("12.50"))
    ]
    assert check_read_only("SELECT ?::DATE", dialect="snowflake").sql == "SELECT ?::DATE"


# --- m14: RATIO_TO_REPORT and OBJECT_AGG ----------------------------------------------------------


def test_ratio_to_report_divides_by_the_partition_total(con: Any) -> None:
    sql = "SELECT deal_id, RATIO_TO_REPORT(amount) OVER (PARTITION BY owner) AS r FROM crm.deals ORDER BY deal_id"
    assert [(d, round(float(r), 4)) for d, r in rows(con, sql)] == [(1, 0.25), (2, 0.75), (3, 0.25), (4, 0.75)]


def test_object_agg_builds_the_object_without_null_keys_or_values(con: Any) -> None:
    sql = "SELECT OBJECT_AGG(k, v) FROM (SELECT * FROM VALUES ('a', 1), ('b', NULL), (NULL, 3), ('c', 2) AS t(k, v))"
    assert json.loads(value(con, sql)) == {"a": 1, "c": 2}
    assert json.loads(value(con, "SELECT OBJECT_AGG(name, account_id) FROM crm.accounts WHERE FALSE")) == {}


# --- n9: IDENTIFIER -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["'crm.deals'", "'CRM.DEALS'", '\'"CRM"."DEALS"\'', "'memory.crm.deals'"])
def test_identifier_with_a_literal_reads_the_table_it_names(con: Any, name: str) -> None:
    assert value(con, f"SELECT COUNT(*) FROM IDENTIFIER({name})") == 4


def test_identifier_with_a_parameter_is_refused_for_the_true_reason() -> None:
    error = refused("SELECT * FROM IDENTIFIER(?)")
    assert "parameter" in error.message
    assert "file" not in error.message.split("(")[0]


# --- n1: result column names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "columns"),
    [
        ("SELECT stage, COUNT(*) AS n FROM crm.deals GROUP BY stage", ["STAGE", "N"]),
        ("SELECT COUNT(*), SUM(amount), max(d.owner) FROM crm.deals d", ["COUNT(*)", "SUM(AMOUNT)", "MAX(D.OWNER)"]),
        ('SELECT d.owner, owner AS "Who", 1 AS "x y" FROM crm.deals d LIMIT 1', ["OWNER", "Who", "x y"]),
        ('SELECT "Mixed" FROM (SELECT 1 AS "Mixed")', ["Mixed"]),
        ("SELECT deal_id AS id FROM crm.deals UNION ALL SELECT account_id FROM crm.accounts", ["ID"]),
        ("SELECT DISTINCT stage FROM crm.deals", ["STAGE"]),
        ("SELECT * FROM crm.accounts", ["ACCOUNT_ID", "NAME"]),
        ("SELECT a.* FROM crm.accounts a", ["ACCOUNT_ID", "NAME"]),
    ],
)
def test_result_columns_are_named_as_snowflake_names_them(con: Any, sql: str, columns: list[str]) -> None:
    assert run(con, sql)[0] == columns


# --- n3: nesting ----------------------------------------------------------------------------------


def test_deeply_nested_but_reasonable_sql_is_accepted(con: Any) -> None:
    assert value(con, "SELECT " + "(" * 100 + "1" + ")" * 100) == 1
    assert value(con, "SELECT " + "ABS(" * 60 + "-1" + ")" * 60) == 1


def test_nesting_beyond_the_limit_is_refused_with_its_own_hint() -> None:
    error = refused("SELECT " + "(" * 300 + "1" + ")" * 300)
    assert "nested too deeply" in error.message
    assert error.hint == NESTING_HINT != PARSE_HINT


# --- m5: catalog views that reveal settings or paths ----------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name, setting FROM pg_settings",
        "SELECT * FROM pg_catalog.pg_settings",
        "SELECT path FROM duckdb_databases",
        "SELECT * FROM duckdb_settings",
        "SELECT file FROM pragma_database_list",
        "SELECT * FROM system.main.duckdb_databases",
    ],
)
def test_catalog_views_revealing_settings_or_paths_are_refused(sql: str) -> None:
    assert "reveals the engine's settings, file paths or logs" in refused(sql).message


def test_no_catalog_view_the_guard_accepts_reveals_the_file_path_or_settings(tmp_path: Path) -> None:
    path = tmp_path / "secret-location.duckdb"
    connection = duckdb.connect(str(path))
    found = connection.execute("SELECT schema_name, view_name FROM duckdb_views() WHERE internal").fetchall()
    views = [f"{schema}.{name}" for schema, name in found]
    assert "pg_catalog.pg_settings" in views
    for view in views:
        try:
            checked = check_read_only(f"SELECT * FROM {view}", dialect="duckdb")
        except PolicyError:
            continue
        shown = repr(connection.execute(checked.sql).fetchall())
        assert str(tmp_path) not in shown, view  # the database name (the file's stem) is not a path
        assert "memory_limit" not in shown, view
    connection.close()
