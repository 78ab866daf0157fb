"""``GET /openapi.json``: the REST contract generated from the registry's models (never written by hand)."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from tools import __version__
from tools.exports import DOWNLOAD_PATH
from tools.registry import TOOLS
from tools.spec import ToolSpec

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


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
    }
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
# Every operation may answer these; POST bodies add 408, 409 (export) and 413.
_COMMON_ERRORS = {
    "400": ("Invalid argument or page token, or a request that is not valid HTTP", None),
    "401": ("Missing or invalid credentials", None),
    "403": ("This token may not call this tool, or the browser Origin is not allowed", None),
    "404": ("Not found", None),
    "421": ("This server does not serve that Host (DNS rebinding protection)", None),
    "429": ("Too many requests (rate limit) or too many exports queued; see Retry-After", _RETRY_AFTER),
    "500": ("Internal error", None),
    "502": ("The upstream FOCUS API answered wrongly (upstream mode)", None),
    "503": (
        "A query ran longer than the configured timeout, the data source is unavailable, or this address holds "
        "too many unauthenticated connections",
        None,
    ),
    "504": ("The upstream FOCUS API did not answer in time (upstream mode)", None),
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retrying a POST with the same key (1 to 200 characters) returns the job the first try started "
    "instead of a second one, also after a server restart; the same key with a different body is 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}


def _query_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema as a query string carries it: never null (absent means unset), no null default."""
    schema = {k: v for k, v in prop.items() if k not in ("description", "title")}
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            schema.pop("anyOf")
            schema = {**kept[0], **schema}
    if schema.get("default", ...) is None:
        schema.pop("default")
    return schema


_DOWNLOAD = {
    "operationId": "downloadexportfile",
    "summary": "Download an export file",
    "description": "One file of a Complete export job (files[].downloadUrl of getcostandusageexportstatus), "
    "under the same credentials; only the principal that started the job may download it. "
    "X-Checksum-SHA256 carries the file's sha256.",
    "parameters": [
        {"name": "jobId", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
    ],
    "responses": {
        "200": {
            "description": "The file (CSV, Parquet or JSON Lines)",
            "headers": {"X-Checksum-SHA256": {"description": "sha256 of the file.", "schema": {"type": "string"}}},
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        },
        **{status: _error(text, headers) for status, (text, headers) in _COMMON_ERRORS.items()},
    },
    "security": [{"bearer": []}, {"apiKey": []}],
}
_HEALTHZ = {
    "operationId": "healthz",
    "summary": "Health",
    "description": "Liveness and the data version; no credentials needed.",
    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}},
    "security": [],
}
_OPENAPI = {
    "operationId": "openapi",
    "summary": "This document",
    "description": "The OpenAPI 3.1 description of this API; no credentials needed.",
    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}},
    "security": [],
}


def _parameters(spec: ToolSpec) -> list[dict[str, Any]]:
    """A GET tool's input fields as path or query parameters."""
    input_schema = spec.input_model.model_json_schema()
    path_params = {p.strip("{}") for p in spec.rest.path.split("/") if p.startswith("{")}
    return [
        {
            "name": name,
            "in": "path" if name in path_params else "query",
            "required": name in path_params or name in input_schema.get("required", []),
            "description": prop.get("description", ""),
            "schema": _query_schema(prop),
        }
        for name, prop in input_schema.get("properties", {}).items()
    ]


def _tool_operation(spec: ToolSpec, components: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(spec.rest.success_status): {
            "description": "OK" if spec.rest.success_status == 200 else "Accepted",
            "content": {"application/json": {"schema": _schema(spec.output_model, components)}},
        },
        **{status: _error(text, headers) for status, (text, headers) in _COMMON_ERRORS.items()},
    }
    operation: dict[str, Any] = {
        "operationId": spec.name,
        "summary": spec.title,
        "description": spec.description,
        "responses": responses,
        "security": [{"bearer": []}, {"apiKey": []}],
    }
    if spec.rest.method == "GET":
        operation["parameters"] = _parameters(spec)
    else:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": _schema(spec.input_model, components)}},
        }
        responses["413"] = _error("The request body is larger than the server accepts")
        responses["408"] = _error("The request body did not arrive within the body timeout")
    if spec.name == "exportcostandusage":
        operation["parameters"] = [IDEMPOTENCY_KEY]
        responses["409"] = _error("This Idempotency-Key was used for a different export")
        responses["202"]["headers"] = {
            "Location": {"description": "The job's status URL.", "schema": {"type": "string"}}
        }
    if spec.name == "listcostandusage":
        responses["200"]["content"]["application/x-ndjson"] = {
            "schema": {"type": "string", "description": "Every matching record, one JSON object per line."}
        }
        responses["200"]["headers"] = {
            "X-Total-Records": {
                "description": "With Accept: application/x-ndjson: how many records the stream holds.",
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    return operation


@cache
def openapi_document(server_url: str) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for spec in TOOLS:
        paths.setdefault(spec.rest.path, {})[spec.rest.method.lower()] = _tool_operation(spec, components)
    paths[DOWNLOAD_PATH] = {"get": _DOWNLOAD}
    paths["/healthz"] = {"get": _HEALTHZ}
    paths["/openapi.json"] = {"get": _OPENAPI}
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
