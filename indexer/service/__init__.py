"""The archive as a service: the HTTP API (``newsarchive serve``), its keys, and the MCP server."""
