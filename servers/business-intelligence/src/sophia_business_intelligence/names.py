"""The BI server's tool names: hints, docstrings and refusals import them, so none can drift."""

from __future__ import annotations

WAREHOUSE_QUERY = "warehouse_query"
WAREHOUSE_EXECUTE = "warehouse_execute"
WAREHOUSE_LIST_DATABASES = "warehouse_list_databases"
WAREHOUSE_LIST_SCHEMAS = "warehouse_list_schemas"
WAREHOUSE_LIST_TABLES = "warehouse_list_tables"
WAREHOUSE_DESCRIBE_TABLE = "warehouse_describe_table"
