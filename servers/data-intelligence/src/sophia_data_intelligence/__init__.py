"""Sophia data intelligence MCP server."""
