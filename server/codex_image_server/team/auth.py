"""The API-key check every surface makes once per call: the gRPC servicer
hands it the call's metadata, the HTTP shim the request's key headers as the
same (lower-case name, value) pairs, so both are checked alike and answer
the same UNAUTHENTICATED. grpc.health and reflection stay open so a mesh can
probe and a person can `grpcurl list` without a key."""

from __future__ import annotations

from codex_image_server.errors import Kind, ServiceError
from codex_image_server.settings import env_name
from codex_image_server.team.keys import ApiKey, Keyring


def presented_key(metadata) -> str:
    for key, value in metadata or ():
        if key == "authorization" and value.lower().startswith("bearer "):
            return value[7:].strip()
        if key == "x-api-key":
            return value.strip()
    return ""


def denial_message(presented: bool) -> str:
    """What a caller must do about a 401: which header, and where the key lives."""
    what = (
        "the API key sent is not one this server accepts"
        if presented
        else "this server requires an API key"
    )
    return (
        f"{what}: send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`. The server's "
        "keys are "
        f"set with {env_name('api_keys')} or --api-key, or named in the keys file "
        f"({env_name('keys_file')}); a server on 127.0.0.1 needs none, so for a client that "
        "cannot send a "
        "key (the Photoshop host never does), start the server without one."
    )


def check(metadata, keyring: Keyring) -> ApiKey:
    """The caller's key entry (named keys, the "default" env key, or ANONYMOUS
    when no key is configured); UNAUTHENTICATED when none matches."""
    presented = presented_key(metadata)
    key = keyring.identify(presented)
    if key is None:
        raise ServiceError(Kind.UNAUTHENTICATED, "UNAUTHORIZED", denial_message(bool(presented)))
    return key
