"""Pulumi stacks through the Automation API: finding the CLI, choosing the backend, running operations.

Nothing here imports MCP; `pulumi` itself is imported only inside `engine`, on first use, because it
is a heavy import and the server must answer `initialize` without it.
"""
