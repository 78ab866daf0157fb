"""focus-api's transport-neutral core: the FOCUS 1.3 catalog, the tools and their contract.

Nothing in this package knows about MCP, HTTP or DuckDB; ``server/`` wires and exposes it.
"""

__version__ = "0.1.0"
