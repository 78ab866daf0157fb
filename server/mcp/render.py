"""What MCP results look like: a short text a model can quote, structured content, errors, resource links.

Decimals in structured content are exact strings (MCP clients parse JSON numbers as binary floats); the
summary tool's text is a Markdown table. Errors are ``isError`` results whose text is the same
``{code, message, details}`` body REST sends.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from mcp.types import CallToolResult, ResourceLink, TextContent
from pydantic import BaseModel

from server.mcp.render_commitments import burn_down_text, discounts_text
from tools import wire
from tools.burndown import SummarizeContractCommitmentsOutput
from tools.discounts import SummarizeCommitmentDiscountsOutput
from tools.errors import FocusApiError
from tools.exports import ExportJob
from tools.reconciliation import ReconcileInvoicesOutput
from tools.records import SUGGESTED_COLUMNS
from tools.summaries import ListCostAndUsageValuesOutput, SummarizeCostAndUsageOutput

EXPORT_URI = "focus-export://{jobId}/{name}"


def _table(output: SummarizeCostAndUsageOutput, limit: int = 40) -> str:
    """The summary as a compact Markdown table an agent can quote."""
    columns = ["BillingCurrency", *output.groupBy, *output.metrics, "rowCount"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in output.data[:limit]:
        values = row.model_dump()
        cells = ["Other" if values.get("other") and c in output.groupBy else _cell(values.get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    more = f"\n({len(output.data) - limit} more groups in structured content.)" if len(output.data) > limit else ""
    totals = "; ".join(
        f"{t.BillingCurrency}: " + ", ".join(f"{m} {_cell(t.model_dump().get(m))}" for m in output.metrics)
        for t in output.totals
    )
    cut = f"\nCut: {output.truncated.reason}; {output.truncated.howToGetTheRest}." if output.truncated else ""
    return "\n".join(lines) + more + f"\nTotals per currency (never added across currencies): {totals}." + cut


def _cell(value: Any) -> str:
    if isinstance(value, Decimal):
        return wire.decimal_text(value)
    return "" if value is None else str(value)


_RECONCILIATION = (
    ("issuer", "InvoiceIssuerName"),
    ("invoice", "InvoiceId"),
    ("currency", "BillingCurrency"),
    ("period", "billingPeriodStart"),
    ("invoiced", "invoicedBilledCost"),
    ("cost and usage", "costAndUsageBilledCost"),
    ("difference", "difference"),
    ("tolerance", "tolerance"),
    ("status", "status"),
    ("closed-period corrections", "closedPeriodCorrectionRows"),
)


def _reconciliation(output: ReconcileInvoicesOutput, limit: int = 40) -> str:
    """The reconciliation as a compact Markdown table, one invoice and currency per line."""
    lines = ["| " + " | ".join(h for h, _ in _RECONCILIATION) + " |", "|" + "---|" * len(_RECONCILIATION)]
    for row in output.data[:limit]:
        # Rows arrive as dicts (the handler builds the answer with model_construct) or as models.
        values = dict(row) if isinstance(row, dict) else row.model_dump()
        values["billingPeriodStart"] = (values["billingPeriodStart"] or "")[:10]
        lines.append("| " + " | ".join(_cell(values.get(k)) for _, k in _RECONCILIATION) + " |")
    shown = min(len(output.data), limit)
    more = "; more: pass nextPageToken" if output.nextPageToken else ""
    return (
        "\n".join(lines)
        + f"\n{shown} of {output.totalRecords} invoices (difference = invoiced - cost and usage, per currency; "
        f"dataCompleteness {output.dataCompleteness}){more}."
    )


def summary(output: BaseModel) -> str:
    """A short text a model can quote; the full answer is in structured content."""
    if isinstance(output, SummarizeCostAndUsageOutput):
        return _table(output)
    if isinstance(output, ReconcileInvoicesOutput):
        return _reconciliation(output)
    if isinstance(output, SummarizeContractCommitmentsOutput):
        return burn_down_text(output)
    if isinstance(output, SummarizeCommitmentDiscountsOutput):
        return discounts_text(output)
    if isinstance(output, ListCostAndUsageValuesOutput):
        shown = ", ".join(f"{v.value} ({v.rowCount} rows)" for v in output.data[:50])
        more = "; more: pass nextPageToken" if output.nextPageToken else ""
        return f"{output.totalRecords} values of {output.column}: {shown}{more}."
    data = getattr(output, "data", None)
    if isinstance(data, list):
        more = "more pages: pass nextPageToken" if getattr(output, "nextPageToken", None) else "last page"
        cut = " (cut by the size budget; see truncated)" if getattr(output, "truncated", None) else ""
        return f"{len(data)} of {getattr(output, 'totalRecords', '?')} records{cut}; {more}."
    if isinstance(output, ExportJob):
        text = f"Export {output.jobId}: {output.status}"
        if output.status == "Complete":
            text += f", {output.recordCount} records, {output.bytes} bytes, sha256 {output.sha256}"
        if output.progress is not None:
            expected = output.progress.rowsExpected
            text += f", {output.progress.rowsWritten}" + (f" of {expected}" if expected is not None else "") + " rows"
        if output.error:
            text += f" ({output.error})"
        return text + "."
    loaded = getattr(output, "loaded", None)
    if loaded is not None:
        return (
            f"FOCUS {getattr(output, 'focusVersion', '1.3')}: {loaded.costAndUsageRows} cost and usage rows, "
            f"{loaded.contractCommitmentRows} contract commitments; providers {', '.join(loaded.providers)}; "
            f"currencies {', '.join(loaded.currencies)}{'; demo data' if loaded.demo else ''}."
        )
    return "Done."


def error_result(error: FocusApiError) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(error.body()))], is_error=True)


def export_links(job: ExportJob) -> list[ResourceLink]:
    return [
        ResourceLink(
            type="resource_link",
            uri=EXPORT_URI.replace("{jobId}", job.jobId).replace("{name}", f.name),
            name=f.name,
            mime_type=f.mediaType,
            size=f.bytes,
            description=f"{f.dataset} export, {f.recordCount} records; over HTTP: {f.downloadUrl}",
        )
        for f in job.files
    ]


def _size_hint(structured: dict[str, Any], rows: int) -> str:
    """For a page of every column: what it cost, and the narrower ask that answers most questions."""
    size = len(wire.dumps(structured))
    return (
        f" This page is {size:,} bytes of structured content ({rows} rows of every column, most of them null); "
        f"to keep the conversation small pass columns={json.dumps(list(SUGGESTED_COLUMNS))} (or the columns "
        "the question needs)."
    )


def _receipt_text(receipt: dict[str, Any]) -> str:
    rest = receipt["rest"]
    return (
        f"\nReceipt: data version {receipt['dataVersion']}; the same answer over REST: {rest['method']} {rest['url']}"
        + (f" with body {json.dumps(rest['body'])}" if "body" in rest else "")
        + " (send your token)."
    )


def tool_result(output: BaseModel, receipt: dict[str, Any], *, every_column: bool) -> CallToolResult:
    """The answer: a text a model can quote (with the receipt), structured content, and for exports resource
    links. ``every_column``: a page of rows whose caller gave no ``columns``."""
    structured = wire.with_decimal_strings(wire.plain(output))
    text = summary(output)
    data = getattr(output, "data", None)
    if every_column and isinstance(data, list) and data:
        text += _size_hint(structured, len(data))
    content: list[Any] = [TextContent(type="text", text=text + _receipt_text(receipt))]
    if isinstance(output, ExportJob):
        content += export_links(output)
    return CallToolResult(content=content, structured_content=structured | {"receipt": receipt})
