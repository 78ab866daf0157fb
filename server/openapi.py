"""``GET /openapi.json``: the REST contract generated from the registry's models (never written by hand)."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from tools import __version__
from tools.registry import TOOLS

_REF = "#/components/schemas/{model}"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "details"],
    "properties": {
        "code": {"type": "string", "description": "Stable machine-readable error code."},
        "message": {"type": "string", "description": "What was wrong and how to fix it."},
        "details": {"type": "object"},
    },
}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": _REF.format(model=model.__name__)}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
    }


@cache
def openapi_document(server_url: str) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for spec in TOOLS:
        input_schema = spec.input_model.model_json_schema()
        operation: dict[str, Any] = {
            "operationId": spec.name,
            "summary": spec.title,
            "description": spec.description,
            "responses": {
                str(spec.rest.success_status): {
                    "description": "OK",
                    "content": {"application/json": {"schema": _schema(spec.output_model, components)}},
                },
                "400": _error("Invalid argument or page token"),
                "401": _error("Missing or invalid credentials"),
                "404": _error("Not found"),
                "500": _error("Internal error"),
            },
            "security": [{"bearer": []}, {"apiKey": []}],
        }
        path_params = {p.strip("{}") for p in spec.rest.path.split("/") if p.startswith("{")}
        if spec.rest.method == "GET":
            operation["parameters"] = [
                {
                    "name": name,
                    "in": "path" if name in path_params else "query",
                    "required": name in path_params or name in input_schema.get("required", []),
                    "description": prop.get("description", ""),
                    "schema": {k: v for k, v in prop.items() if k not in ("description", "title")},
                }
                for name, prop in input_schema.get("properties", {}).items()
            ]
        else:
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": _schema(spec.input_model, components)}},
            }
        if spec.name == "listcostandusage":
            operation["responses"]["200"]["content"]["application/x-ndjson"] = {
                "schema": {"type": "string", "description": "Every matching record, one JSON object per line."}
            }
        paths.setdefault(spec.rest.path, {})[spec.rest.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "focus-api: FinOps FOCUS 1.3 Cost and Usage API",
            "version": __version__,
            "description": "FOCUS 1.3 Cost and Usage and Contract Commitment data. Decimals are exact JSON numbers.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
