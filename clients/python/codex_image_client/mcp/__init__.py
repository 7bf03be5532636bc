"""The MCP tools of codex-image-server, free of any transport.

Both MCP transports serve these same definitions: the server's `/mcp` route
(streamable HTTP, calling the service in-process) and `codex-image mcp`
(stdio, calling a running server over gRPC). Each gives them a `Backend`
(backend.py) and nothing else differs.

- `schemas`: the tools and their JSON Schemas, with the choices the server's
  capabilities list as enums;
- `arguments`: a tool's arguments -> the API's request messages;
- `references`: a reference given as a data URL, a stored image's id or a
  file path -> its bytes (paths only where the transport allows them);
- `render`: answers and errors -> MCP tool results;
- `tools`: what each tool does; `server`: the SDK server that serves them;
- `backend`: what a transport provides, and the gRPC one (`stdio` runs it).
"""
