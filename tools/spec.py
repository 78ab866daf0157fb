"""What a tool is, once: name, model-facing description, input/output models, handler, hints, REST route.

Each tool family module (``tools/cost_and_usage.py``, ``tools/exports.py``, ...) declares its specs;
``tools/registry.py`` collects them into the one registry both adapters loop over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from tools.context import ToolContext

Handler = Callable[[Any, ToolContext], Awaitable[BaseModel]]

MONEY = (
    "Money columns (BilledCost, EffectiveCost, ListCost, ContractedCost, unit prices) are exact decimals in the "
    "row's BillingCurrency; never add amounts of different currencies. Date/times are UTC, YYYY-MM-DDTHH:MM:SSZ; "
    "every *Start is inclusive and every *End exclusive."
)


@dataclass(frozen=True, slots=True)
class Hints:
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool = False


READ_ONLY = Hints(read_only=True, destructive=False, idempotent=True)


@dataclass(frozen=True, slots=True)
class RestRoute:
    method: str
    path: str
    success_status: int = 200


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    handler: Handler
    hints: Hints
    rest: RestRoute
