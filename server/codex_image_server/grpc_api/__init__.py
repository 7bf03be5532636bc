"""The gRPC edge: codeximage.v1.ImageService and google.longrunning.Operations
over grpc.aio, a thin adapter over the dataplane's handlers.

- servicer: the key checked once, the bytes parsed, the handler called, flow control and the
  idle timer
- status: the one gRPC mapping of the API's google.rpc.Status
- wire: a request as it came (its reference bytes never copied)
- server: the grpc.aio server with health and reflection
"""
