"""MCP (Model Context Protocol) stdio servers as providers: a manifest with ``kind: mcp``.

``connection`` speaks MCP to the server; ``tools`` maps tools to methods and
results; ``client_config`` reads Claude Desktop / ``.mcp.json`` / VS Code files.
"""
