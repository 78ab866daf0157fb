"""capability.yaml is the declared surface: any drift from what the server registers fails here."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcp import Client

from server import app as app_module
from server.auth import TokenStore
from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.rest.openapi import openapi_document
from server.services import Services
from server.settings import Settings
from tools.registry import TOOLS

CAPABILITY = yaml.safe_load((Path(__file__).resolve().parent.parent / "capability.yaml").read_text())
JSON_TYPES = {"string": "string", "integer": "integer", "boolean": "boolean"}


def declared_tools() -> dict[str, dict[str, Any]]:
    mcp = next(e for e in CAPABILITY["capability"]["exposes"] if e["type"] == "mcp")
    return {t["name"]: t for t in mcp["tools"]}


def declared_rest() -> dict[str, tuple[str, str]]:
    rest = next(e for e in CAPABILITY["capability"]["exposes"] if e["type"] == "rest")
    return {op["name"]: (op["method"], res["path"]) for res in rest["resources"] for op in res["operations"]}


def schema_type(prop: dict[str, Any]) -> str:
    types = [p.get("type") for p in prop.get("anyOf", [prop])]
    (kind,) = [t for t in types if t != "null"]
    return str(kind)


def test_the_registry_and_capability_declare_the_same_tools() -> None:
    assert [t.name for t in TOOLS] == list(declared_tools())


@pytest.mark.parametrize("spec", TOOLS, ids=lambda s: s.name)
def test_parameters_and_their_types_match_the_capability(spec: Any) -> None:
    declared = {p["name"]: p["type"] for p in declared_tools()[spec.name].get("inputParameters", [])}
    schema = spec.input_model.model_json_schema()
    registered = {name: schema_type(prop) for name, prop in schema.get("properties", {}).items()}
    assert registered == declared
    required = {p["name"] for p in declared_tools()[spec.name].get("inputParameters", []) if p.get("required")}
    assert set(schema.get("required", [])) == required


@pytest.mark.parametrize("spec", TOOLS, ids=lambda s: s.name)
def test_hints_match_the_capability(spec: Any) -> None:
    hints = declared_tools()[spec.name]["hints"]
    assert (spec.hints.read_only, spec.hints.destructive, spec.hints.idempotent) == (
        hints["readOnly"],
        hints["destructive"],
        hints["idempotent"],
    )


@pytest.mark.parametrize("spec", TOOLS, ids=lambda s: s.name)
def test_rest_method_and_path_match_the_capability(spec: Any) -> None:
    assert declared_rest()[spec.name] == (spec.rest.method, spec.rest.path)


def test_the_consumed_operations_are_the_exposed_ones() -> None:
    (consumed,) = CAPABILITY["capability"]["consumes"]
    ops = {op["name"]: (op["method"], r["path"]) for r in consumed["resources"] for op in r["operations"]}
    assert ops == declared_rest()
    assert consumed["authentication"] == {"type": "bearer", "token": "{{FINOPS_FOUNDATION_TOKEN}}"}


def test_the_default_ports_match_the_capability() -> None:
    ports = {e["type"]: e["port"] for e in CAPABILITY["capability"]["exposes"]}
    defaults = Settings(data_dir=Path("/nonexistent"))
    assert (defaults.rest_port, defaults.mcp_port) == (ports["rest"], ports["mcp"])
    assert defaults.host == "127.0.0.1"
    assert "streamable_http_app" in inspect.getsource(app_module)


async def test_what_the_mcp_server_registers_matches_the_capability(services: Services) -> None:
    async with Client(FocusMCPServer(Pipeline(services))) as client:
        tools = (await client.list_tools()).tools
    declared = declared_tools()
    assert [t.name for t in tools] == list(declared)
    for tool in tools:
        hints = declared[tool.name]["hints"]
        assert tool.annotations is not None
        assert (
            tool.annotations.read_only_hint,
            tool.annotations.destructive_hint,
            tool.annotations.idempotent_hint,
        ) == (
            hints["readOnly"],
            hints["destructive"],
            hints["idempotent"],
        )
        params = {p["name"] for p in declared[tool.name].get("inputParameters", [])}
        assert set(tool.input_schema.get("properties", {})) == params


async def test_what_the_rest_app_routes_matches_the_capability(services: Services) -> None:
    app = create_app(Pipeline(services), TokenStore([]))
    routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    for method, path in declared_rest().values():
        assert (method, path) in routes


async def test_openapi_documents_every_route_the_rest_app_serves_and_no_other(services: Services) -> None:
    app = create_app(Pipeline(services), TokenStore([]))
    served = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"  # aiohttp adds HEAD beside every GET
    }
    documented = {
        (method.upper(), path)
        for path, item in openapi_document("http://x").get("paths", {}).items()
        for method in item
    }
    assert served == documented


def test_openapi_is_generated_from_the_same_models() -> None:
    doc = openapi_document("http://127.0.0.1:8080")
    assert doc["openapi"].startswith("3.1")
    operations = {
        op["operationId"]: (method.upper(), path) for path, item in doc["paths"].items() for method, op in item.items()
    }
    tool_operations = {k: v for k, v in operations.items() if k in declared_rest()}
    assert tool_operations == declared_rest()
    list_params = {p["name"] for p in doc["paths"]["/cost-and-usage"]["get"]["parameters"]}
    assert list_params == {p["name"] for p in declared_tools()["listcostandusage"]["inputParameters"]}
    job = doc["paths"]["/cost-and-usage/export/{jobId}"]["get"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in job] == [
        ("jobId", "path", True),
        ("waitSeconds", "query", False),
    ]
    assert job[1]["schema"] == {"type": "integer", "minimum": 0, "maximum": 60}
