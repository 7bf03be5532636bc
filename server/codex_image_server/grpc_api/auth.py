"""API-key check for ImageService: one check, applied by the servicer's
call wrapper, so the external gRPC path and the shim's in-process path are
checked the same way (both hand it the call's metadata). grpc.health and
reflection stay open so a mesh can probe and a person can `grpcurl list`
without a key."""
from __future__ import annotations

from ..errors import Kind, ServiceError
from ..keys import ApiKey, Keyring


def presented_key(metadata) -> str:
    for key, value in metadata or ():
        if key == "authorization" and value.lower().startswith("bearer "):
            return value[7:].strip()
        if key == "x-api-key":
            return value.strip()
    return ""


def check(metadata, keyring: Keyring) -> ApiKey:
    """The caller's key entry (named keys, the "default" env key, or ANONYMOUS
    when no key is configured); UNAUTHENTICATED when none matches."""
    key = keyring.identify(presented_key(metadata))
    if key is None:
        raise ServiceError(
            Kind.UNAUTHENTICATED, "UNAUTHORIZED",
            "missing or wrong API key: send `authorization: Bearer <key>` or `x-api-key: <key>`")
    return key
