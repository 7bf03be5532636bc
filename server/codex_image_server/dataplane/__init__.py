"""The dataplane every surface calls (gRPC, /v1, the OpenAI routes, the console, MCP).

- service: Service, Generate with its history record, key limits, logs and metrics;
  reads and deletes
- generation: one request, its candidates side by side, one event stream, one ending
- frozen: answers fixed for the server's life (capabilities), encoded once per form
"""
