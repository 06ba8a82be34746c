"""Sophia business-intelligence MCP server: SQL over Snowflake or an embedded DuckDB warehouse."""
