"""The route table, read from the google.api.http annotations of ImageService.

No ImageService path is written here: each RPC's rule (verb, path template,
body) comes from the descriptors generated from
protos/codeximage/v1/image_service.proto. The standard
google.longrunning.Operations service is served on the paths
docs/operations.md gives (OPERATION_RULES): its own proto's annotations take
`operations/**`, names with slashes, which this server's names never have.
"""

from __future__ import annotations

import dataclasses
import re

from codeximage.v1 import image_service_pb2 as pb
from google.api import annotations_pb2, http_pb2
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf.descriptor import MethodDescriptor

SERVICE = pb.DESCRIPTOR.services_by_name["ImageService"]
OPERATIONS = lro.DESCRIPTOR.services_by_name["Operations"]
OPERATION_RULES = {
    "GetOperation": http_pb2.HttpRule(get="/v1/{name=operations/*}"),
    "ListOperations": http_pb2.HttpRule(get="/v1/operations"),
    "CancelOperation": http_pb2.HttpRule(post="/v1/{name=operations/*}:cancel", body="*"),
    "DeleteOperation": http_pb2.HttpRule(delete="/v1/{name=operations/*}"),
    "WaitOperation": http_pb2.HttpRule(post="/v1/{name=operations/*}:wait", body="*"),
}
_VERBS = ("get", "put", "post", "delete", "patch")
_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=([^}]*))?\}")


@dataclasses.dataclass(frozen=True)
class Route:
    rpc: str  # method name, e.g. "GetImageFile"
    http_method: str  # "GET", "POST", ...
    template: str  # "/v1/images/{image_id}/file"
    body: str  # "" (no body), "*" or a field name
    method: MethodDescriptor
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
        parts.append(re.escape(template[pos : var.start()]))
        name, sub = var.group(1), var.group(2)
        names.append(name)
        # `*` takes one segment, `**` the rest; other segments are literal
        # (`{name=operations/*}`).
        segment = "/".join(
            "[^/]+" if part == "*" else ".+" if part == "**" else re.escape(part)
            for part in (sub or "*").split("/")
        )
        parts.append(f"(?P<{name.replace('.', '__')}>{segment})")
        pos = var.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts)), tuple(names)


def _rules(rule):
    yield rule
    yield from rule.additional_bindings


def _annotated(service):
    """(method, its HTTP rule) of each annotated RPC."""
    for method in service.methods:
        options = method.GetOptions()
        if options.HasExtension(annotations_pb2.http):
            yield method, options.Extensions[annotations_pb2.http]


def build(service=SERVICE) -> list[Route]:
    routes = []
    annotated = list(_annotated(service))
    if service is SERVICE:
        annotated += [
            (OPERATIONS.methods_by_name[name], rule) for name, rule in OPERATION_RULES.items()
        ]
    for method, top in annotated:
        for rule in _rules(top):
            verb = rule.WhichOneof("pattern")
            if verb not in _VERBS:
                continue  # `custom` verbs are not used by this API
            template = getattr(rule, verb)
            pattern, names = _compile(template)
            routes.append(
                Route(method.name, verb.upper(), template, rule.body, method, pattern, names)
            )
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
        methods = (
            (route.http_method, "HEAD") if route.http_method == "GET" else (route.http_method,)
        )
        if http_method in methods:
            return route, {k.replace("__", "."): v for k, v in params.items()}
        allowed.extend(m for m in methods if m not in allowed)
    return None, tuple(allowed)
