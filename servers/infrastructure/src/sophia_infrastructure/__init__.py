"""Sophia infrastructure MCP server."""
