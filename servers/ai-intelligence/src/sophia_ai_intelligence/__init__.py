"""Sophia AI intelligence MCP server."""
