"""The BI server's tool names: hints, docstrings and refusals import them, so none can drift."""

from __future__ import annotations

WAREHOUSE_QUERY = "warehouse_query"
WAREHOUSE_EXECUTE = "warehouse_execute"
WAREHOUSE_LIST_DATABASES = "warehouse_list_databases"
WAREHOUSE_LIST_SCHEMAS = "warehouse_list_schemas"
WAREHOUSE_LIST_TABLES = "warehouse_list_tables"
WAREHOUSE_DESCRIBE_TABLE = "warehouse_describe_table"

VECTOR_LIST_INDEXES = "vector_list_indexes"
VECTOR_DESCRIBE_INDEX = "vector_describe_index"
VECTOR_CREATE_INDEX = "vector_create_index"
VECTOR_DELETE_INDEX = "vector_delete_index"
VECTOR_UPSERT = "vector_upsert"
VECTOR_SEARCH = "vector_search"
VECTOR_FETCH = "vector_fetch"
VECTOR_DELETE_RECORDS = "vector_delete_records"
VECTOR_LOAD_FROM_WAREHOUSE = "vector_load_from_warehouse"

CORTEX_COMPLETE = "cortex_complete"
CORTEX_TEXT = "cortex_text"

MEMORY_REMEMBER = "memory_remember"
MEMORY_RECALL = "memory_recall"
MEMORY_FORGET = "memory_forget"
MEMORY_GATE = "memory"  # SOPHIA_MEMORY_ALLOW_WRITE opens remember/forget without opening DDL/DML
