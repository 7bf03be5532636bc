"""An OpenAPI 3 document for the shim, built at startup from the same
descriptors and HTTP annotations the router uses, so it cannot drift from the
protos. Where the plugin contract wraps an RPC (Generate's aggregated answer
and aliases, the raw file bytes, the error body) the wrapper is described here
next to the adapter that implements it."""

from __future__ import annotations

import re
from typing import Any

from codeximage.v1 import image_service_pb2 as pb
from google.api import field_behavior_pb2
from google.protobuf import descriptor as d
from google.rpc import status_pb2

_INT32 = (
    d.FieldDescriptor.TYPE_INT32,
    d.FieldDescriptor.TYPE_UINT32,
    d.FieldDescriptor.TYPE_SINT32,
    d.FieldDescriptor.TYPE_FIXED32,
    d.FieldDescriptor.TYPE_SFIXED32,
)
_INT64 = (
    d.FieldDescriptor.TYPE_INT64,
    d.FieldDescriptor.TYPE_UINT64,
    d.FieldDescriptor.TYPE_SINT64,
    d.FieldDescriptor.TYPE_FIXED64,
    d.FieldDescriptor.TYPE_SFIXED64,
)
_PACKAGE = pb.DESCRIPTOR.package + "."


def _name(message: d.Descriptor) -> str:
    full = message.full_name
    return full[len(_PACKAGE) :] if full.startswith(_PACKAGE) else full


def _ref(message: d.Descriptor) -> dict:
    return {"$ref": f"#/components/schemas/{_name(message)}"}


class _Schemas:
    def __init__(self):
        self.schemas: dict[str, dict] = {}

    def ref(self, message: Any) -> dict:  # a Descriptor: protobuf's Python one or its upb twin
        if message.full_name == "google.protobuf.Timestamp":
            return {"type": "string", "format": "date-time"}
        if message.full_name == "google.protobuf.Any":
            return {
                "type": "object",
                "properties": {"@type": {"type": "string"}},
                "additionalProperties": True,
            }
        name = _name(message)
        if name not in self.schemas:
            self.schemas[name] = {}  # reserve first: messages may refer to themselves
            self.schemas[name] = self._message(message)
        return _ref(message)

    def _message(self, message: d.Descriptor) -> dict:
        props, required = {}, []
        for field in message.fields:
            schema = self._field(field)
            behaviors = list(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])
            if field_behavior_pb2.OUTPUT_ONLY in behaviors:
                schema = {**schema, "readOnly": True}
            if field_behavior_pb2.REQUIRED in behaviors:
                required.append(field.name)
            props[field.name] = schema
        out = {"type": "object", "properties": props}
        if required:
            out["required"] = required
        oneofs = [o for o in message.oneofs if not o.name.startswith("_")]
        if oneofs:
            out["description"] = "; ".join(
                f"at most one of {', '.join(f.name for f in o.fields)} is set" for o in oneofs
            )
        return out

    def _scalar(self, field: d.FieldDescriptor) -> dict:
        t = field.type
        if t in _INT32:
            return {"type": "integer", "format": "int32"}
        if t in _INT64:
            return {"type": "integer", "format": "int64"}
        if t == d.FieldDescriptor.TYPE_DOUBLE:
            return {"type": "number", "format": "double"}
        if t == d.FieldDescriptor.TYPE_FLOAT:
            return {"type": "number", "format": "float"}
        if t == d.FieldDescriptor.TYPE_BOOL:
            return {"type": "boolean"}
        if t == d.FieldDescriptor.TYPE_BYTES:
            return {"type": "string", "format": "byte"}
        if t == d.FieldDescriptor.TYPE_ENUM:
            enum = field.enum_type
            assert enum is not None  # an enum field names its enum
            return {"type": "string", "enum": [v.name for v in enum.values]}
        if t == d.FieldDescriptor.TYPE_MESSAGE:
            return self.ref(field.message_type)
        return {"type": "string"}

    def _field(self, field: d.FieldDescriptor) -> dict:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            return {
                "type": "object",
                "additionalProperties": self._scalar(field.message_type.fields_by_name["value"]),
            }
        item = self._scalar(field)
        if field.is_repeated:
            return {"type": "array", "items": item}
        return item


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


_ERRORS = {
    "4XX": {
        "description": "Bad request, unauthorized, not found, too large (see error.code)",
        "content": _json({"$ref": "#/components/schemas/ErrorBody"}),
    },
    "5XX": {
        "description": "Server or codex failure (see error.code)",
        "content": _json({"$ref": "#/components/schemas/ErrorBody"}),
    },
}


def _plugin_schemas(s: _Schemas) -> dict:
    """The adapter's wrappers (see adapter.py)."""
    image = s.ref(pb.Image.DESCRIPTOR)
    return {
        "ErrorBody": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "type"],
                    "properties": {
                        "code": {
                            "type": "string",
                            "description": "ErrorInfo reason, lower-cased (e.g. missing_prompt)",
                        },
                        "message": {"type": "string"},
                        "type": {
                            "type": "string",
                            "enum": ["invalid_request_error", "server_error"],
                        },
                    },
                },
                "status": s.ref(status_pb2.Status.DESCRIPTOR),
            },
        },
        "PluginGenerateRequest": {
            "allOf": [
                s.ref(pb.GenerateRequest.DESCRIPTOR),
                {
                    "type": "object",
                    "description": "GenerateRequest plus the plugin contract's aliases. "
                    "references[].image may be a data URL (data:<mime>;base64,...) "
                    "or bare base64. Unknown fields are ignored.",
                    "properties": {
                        "n": {"type": "integer", "description": "alias of count"},
                        "ratio": {"type": "string", "description": "alias of aspect"},
                        "reference_images_base64": {"type": "array", "items": {"type": "string"}},
                        "reference_image_base64": {"type": "string"},
                    },
                },
            ]
        },
        "GenerateResult": {
            "allOf": [
                s.ref(pb.GenerateSummary.DESCRIPTOR),
                {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "description": "the request id"},
                        "data": {
                            "type": "array",
                            "items": {
                                "allOf": [
                                    image,
                                    {
                                        "type": "object",
                                        "properties": {
                                            "url": {
                                                "type": "string",
                                                "format": "uri",
                                                "description": "absolute URL of the file route "
                                                "on the caller's origin",
                                            }
                                        },
                                    },
                                ]
                            },
                        },
                    },
                },
            ]
        },
    }


def _path(template: str) -> str:
    """An OpenAPI path: `{name=operations/*}` becomes `operations/{name}` (the
    variable then holds the segment alone; the server adds the literal back)."""
    return re.sub(r"\{([a-z_.]+)=([^}/]+)/\*\}", r"\2/{\1}", template)


def document(route_list) -> dict:
    s = _Schemas()
    extra = _plugin_schemas(s)
    paths: dict[str, dict] = {}
    for route in route_list:
        inp, out = route.method.input_type, route.method.output_type
        op = {
            "operationId": route.rpc,
            "tags": [route.method.containing_service.name],
            "x-grpc-method": f"/{route.method.containing_service.full_name}/{route.rpc}",
        }
        params = [
            {"name": v, "in": "path", "required": True, "schema": {"type": "string"}}
            for v in route.variables
        ]
        if params:
            op["parameters"] = params
        if route.body:
            op["requestBody"] = {"required": True, "content": _json(s.ref(inp))}
        if route.server_streaming:
            op["responses"] = {
                "200": {
                    "description": "grpc-gateway stream: one JSON object per line",
                    "content": {
                        "application/x-ndjson": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "result": s.ref(out),
                                    "error": s.ref(status_pb2.Status.DESCRIPTOR),
                                },
                            }
                        }
                    },
                }
            }
        else:
            op["responses"] = {"200": {"description": out.name, "content": _json(s.ref(out))}}
        op["responses"].update(_ERRORS)
        _plugin_operation(route.rpc, op, s)
        paths.setdefault(_path(route.template), {})[route.http_method.lower()] = op
        if route.rpc == "GetImageFile":
            head = {k: v for k, v in op.items() if k not in ("responses",)}
            head["operationId"] = "HeadImageFile"
            head["responses"] = {"200": {"description": "headers only (from GetImage)"}, **_ERRORS}
            paths[_path(route.template)]["head"] = head
    paths["/v1/openapi.json"] = {
        "get": {
            "operationId": "OpenApi",
            "tags": ["shim"],
            "responses": {"200": {"description": "this document"}},
        }
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "codex-image-server /v1 HTTP shim",
            "version": "v1",
            "description": "grpc-gateway-style mapping of codeximage.v1.ImageService "
            "(generated from its google.api.http annotations).",
        },
        "paths": paths,
        "components": {
            "schemas": {**dict(sorted(s.schemas.items())), **extra},
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{}, {"apiKey": []}, {"bearer": []}],
    }


def _plugin_operation(rpc: str, op: dict, s: _Schemas) -> None:
    if rpc == "Generate":
        op["requestBody"] = {
            "required": True,
            "content": _json({"$ref": "#/components/schemas/PluginGenerateRequest"}),
        }
        stream = op["responses"]["200"]["content"]
        op["parameters"] = [
            {
                "name": "stream",
                "in": "query",
                "required": False,
                "schema": {"type": "boolean"},
                "description": "true (or Accept: application/x-ndjson) for the NDJSON event stream",
            }
        ]
        op["responses"]["200"] = {
            "description": "aggregated result; NDJSON events when streaming was asked for",
            "content": {**_json({"$ref": "#/components/schemas/GenerateResult"}), **stream},
        }
    elif rpc == "GetImageFile":
        op["responses"]["200"] = {
            "description": "the image bytes, with Content-Length and ETag (the sha256)",
            "content": {
                m: {"schema": {"type": "string", "format": "binary"}}
                for m in ("image/png", "image/jpeg", "image/webp")
            },
        }
    elif rpc == "Health":
        op["security"] = [{}]
        op["responses"]["503"] = {
            "description": "not ready (see problem)",
            "content": _json(s.ref(pb.HealthResponse.DESCRIPTOR)),
        }
