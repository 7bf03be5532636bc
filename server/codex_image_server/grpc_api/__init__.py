"""The gRPC edge: adapts the domain to codeximage.v1.ImageService."""
