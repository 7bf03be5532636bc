"""The dataplane every surface calls (gRPC, /v1, the OpenAI routes, the console, MCP).

- handlers: one method per RPC, (Caller, request message) -> response message(s); what every
  surface calls
- service: Service, Generate with its history record, key limits, logs and metrics; reads and
  deletes
- convert: the API's messages as domain values and back
- rpc_status: a domain error as the API's google.rpc.Status, the same on every surface
- operation_messages: a stored operation as a google.longrunning Operation
- generation: one request, its candidates side by side, one event stream, one ending
- frozen: answers fixed for the server's life (capabilities), encoded once per form
"""
