"""Warehouse backends: the embedded DuckDB default and Snowflake. No MCP types here."""
