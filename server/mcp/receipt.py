"""The receipt on every MCP answer: how a person reproduces an agent's number outside the chat.

It holds the tool, the normalised arguments (as validated, defaults applied), the data version the answer
was read from, and the equivalent REST request (no credentials: the caller adds its own token). For a
page the REST URL asks for exactly the rows the MCP answer holds, even when a size budget cut the page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from pydantic import BaseModel

from server.pipeline import Invocation
from tools.filters import REPEATABLE


def _query(arguments: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in arguments.items():
        if isinstance(value, list):
            if key in REPEATABLE:
                pairs += [(key, str(v)) for v in value]
            else:
                pairs.append((key, ",".join(str(v) for v in value)))
        elif isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        else:
            pairs.append((key, str(value)))
    return pairs


def receipt(invocation: Invocation, output: BaseModel, rest_base: str) -> dict[str, Any]:
    spec = invocation.spec
    arguments = invocation.args.model_dump(mode="json", exclude_none=True)
    data = getattr(output, "data", None)
    if "pageSize" in spec.input_model.model_fields and isinstance(data, list):
        # The page as the MCP answer holds it: what the size budget kept, or the size MCP used.
        if getattr(output, "truncated", None) is not None:
            arguments["pageSize"] = len(data)
        else:
            arguments.setdefault("pageSize", invocation.ctx.limits.default_page_size)
    row_format = getattr(output, "rowFormat", None)
    if row_format is not None:
        arguments["rowFormat"] = row_format  # REST's default differs from MCP's: say which was used
    path = spec.rest.path
    for name in [p.strip("{}") for p in path.split("/") if p.startswith("{")]:
        path = path.replace("{" + name + "}", quote(str(arguments.pop(name, "")), safe=""))
    url = rest_base.rstrip("/") + path
    rest: dict[str, Any] = {"method": spec.rest.method}
    if spec.rest.method == "GET":
        query = urlencode(_query(arguments))
        rest["url"] = url + (f"?{query}" if query else "")
    else:
        rest |= {"url": url, "body": arguments}
    return {
        "tool": spec.name,
        "arguments": arguments,
        "dataVersion": invocation.ctx.data_version,
        "rest": rest | {"auth": "the same token, as Authorization: Bearer <token>"},
    }
