"""The MCP surface: streamable HTTP at `/mcp` on the shim's port, serving
the tools of codex_image_client.mcp (shared with the stdio bridge) over the
same dataplane handlers as every other surface. `asgi` bridges the SDK's
ASGI transport to aiohttp, `backend` calls the handlers for the tools,
`surface` is the route."""
