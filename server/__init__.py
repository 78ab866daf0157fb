"""focus-api server: settings, store, sources, the MCP and REST adapters, auth and the CLI."""
