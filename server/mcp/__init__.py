"""The MCP exposure (stdio and streamable HTTP): server, schemas, rendering, prompts."""
