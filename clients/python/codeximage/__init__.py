"""Generated protobuf and gRPC stubs for the codeximage API (protos/codeximage).

The modules under codeximage/v1 are written by `make proto` and checked in;
`make check-generated` fails when they differ from the protos."""
