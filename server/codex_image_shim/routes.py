"""The route table, read from the google.api.http annotations of ImageService.

No path is written here: each RPC's rule (verb, path template, body) comes
from the descriptors generated from protos/codeximage/v1/image_service.proto.
"""
from __future__ import annotations

import dataclasses
import re

from codeximage.v1 import image_service_pb2 as pb
from google.api import annotations_pb2

SERVICE = pb.DESCRIPTOR.services_by_name["ImageService"]
_VERBS = ("get", "put", "post", "delete", "patch")
_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=([^}]*))?\}")


@dataclasses.dataclass(frozen=True)
class Route:
    rpc: str                      # method name, e.g. "GetImageFile"
    http_method: str              # "GET", "POST", ...
    template: str                 # "/v1/images/{image_id}/file"
    body: str                     # "" (no body), "*" or a field name
    method: object                # the MethodDescriptor
    pattern: re.Pattern
    variables: tuple[str, ...]

    @property
    def server_streaming(self) -> bool:
        return self.method.server_streaming

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


def _compile(template: str) -> tuple[re.Pattern, tuple[str, ...]]:
    parts, names, pos = [], [], 0
    for var in _VARIABLE.finditer(template):
        parts.append(re.escape(template[pos:var.start()]))
        name, sub = var.group(1), var.group(2)
        names.append(name)
        # `{x}` and `{x=*}` take one segment; `{x=**}` (or a longer pattern) the rest.
        segment = "[^/]+" if sub in (None, "*") else ".+"
        parts.append(f"(?P<{name.replace('.', '__')}>{segment})")
        pos = var.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts)), tuple(names)


def _rules(rule):
    yield rule
    yield from rule.additional_bindings


def build(service=SERVICE) -> list[Route]:
    routes = []
    for method in service.methods:
        options = method.GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            continue
        for rule in _rules(options.Extensions[annotations_pb2.http]):
            verb = rule.WhichOneof("pattern")
            if verb not in _VERBS:
                continue  # `custom` verbs are not used by this API
            template = getattr(rule, verb)
            pattern, names = _compile(template)
            routes.append(Route(method.name, verb.upper(), template, rule.body, method, pattern, names))
    # Literal paths win over templated ones (POST /v1/images/generate vs /v1/images/{image_id}).
    routes.sort(key=lambda r: len(r.variables))
    return routes


def resolve(routes: list[Route], http_method: str, path: str):
    """(route, path variables) for this request, or (None, allowed methods)
    when the path exists under other methods, or (None, ()) when it does not."""
    allowed: list[str] = []
    for route in routes:
        params = route.match(path)
        if params is None:
            continue
        methods = (route.http_method, "HEAD") if route.http_method == "GET" else (route.http_method,)
        if http_method in methods:
            return route, {k.replace("__", "."): v for k, v in params.items()}
        allowed.extend(m for m in methods if m not in allowed)
    return None, tuple(allowed)
