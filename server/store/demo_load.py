"""Loading the demo's reference data from its JSON package data (``server/store/demo_data/*.json``).

``reference()`` reads the four files once, on first use (nothing is read at import time), and builds
the typed records of ``server.store.demo_reference``. Every object must have exactly the keys its
record has, each of the expected JSON type. Money and prices are JSON strings parsed to ``Decimal``;
a JSON number with a fraction is refused, since it would be parsed as a float.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

from server.store.demo_reference import (
    BillingAccount,
    Cluster,
    Commitment,
    Namespace,
    Negotiated,
    Provider,
    Reference,
    Region,
    Service,
    Sku,
    SubAccount,
)

DATA_PACKAGE = "server.store.demo_data"


@cache
def reference() -> Reference:
    """The reference data, read from the package data on first use (and never again)."""
    accounts, services = _read("accounts.json"), _read("services.json")
    commitments, kubernetes = _read("commitments.json"), _read("kubernetes.json")
    ref = Reference(
        providers=tuple(Provider(**_fields(r, Provider)) for r in accounts.records("providers")),
        billing_accounts=tuple(_billing_account(r) for r in accounts.records("billing_accounts")),
        sub_accounts=tuple(_sub_account(r) for r in accounts.records("sub_accounts")),
        regions=tuple(_region(r) for r in accounts.records("regions")),
        services=tuple(_service(r) for r in services.records("services")),
        commitments=tuple(_commitment(r) for r in commitments.records("commitments")),
        negotiated=tuple(_negotiated(r) for r in commitments.records("negotiated")),
        clusters=tuple(Cluster(**_fields(r, Cluster)) for r in kubernetes.records("clusters")),
        nodes_per_cluster=kubernetes.integer("nodes_per_cluster"),
        namespaces=tuple(Namespace(**_fields(r, Namespace)) for r in kubernetes.records("namespaces")),
        allocation_method=kubernetes.text("allocation_method"),
        teams=accounts.texts("teams"),
        cost_centers=accounts.texts("cost_centers"),
        apps=accounts.texts("apps"),
    )
    for doc in (accounts, services, commitments, kubernetes):
        doc.done()
    return ref


class _Record:
    """One JSON object read key by key with type checks; ``done()`` refuses keys nobody read."""

    def __init__(self, raw: Any, where: str) -> None:
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected an object")
        self.raw: dict[str, Any] = raw
        self.where = where
        self.unread = set(raw)

    def get(self, key: str, kinds: tuple[type, ...]) -> Any:
        if key not in self.raw:
            raise ValueError(f"{self.where}: {key} is missing")
        self.unread.discard(key)
        value = self.raw[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ValueError(f"{self.where}: {key} = {value!r} is not {' or '.join(k.__name__ for k in kinds)}")
        return value

    def text(self, key: str) -> str:
        return str(self.get(key, (str,)))

    def opt_text(self, key: str) -> str | None:
        value = self.get(key, (str, type(None)))
        return None if value is None else str(value)

    def integer(self, key: str) -> int:
        return int(self.get(key, (int,)))

    def opt_integer(self, key: str) -> int | None:
        value = self.get(key, (int, type(None)))
        return None if value is None else int(value)

    def flag(self, key: str) -> bool:
        return bool(self.get(key, (bool,)))

    def decimal(self, key: str) -> Decimal:
        return self._decimal(key, self.text(key))

    def opt_decimal(self, key: str) -> Decimal | None:
        value = self.opt_text(key)
        return None if value is None else self._decimal(key, value)

    def _decimal(self, key: str, text: str) -> Decimal:
        """A decimal written as a string: "0.10" keeps its digits (and its scale)."""
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite():
            raise ValueError(f"{self.where}: {key} = {text!r} is not a decimal number")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        values = self.get(key, (list,))
        if not all(isinstance(v, str) for v in values):
            raise ValueError(f"{self.where}: {key} must list strings")
        return tuple(values)

    def records(self, key: str) -> list[_Record]:
        return [_Record(r, f"{self.where} {key}[{i}]") for i, r in enumerate(self.get(key, (list,)))]

    def done(self) -> None:
        if self.unread:
            raise ValueError(f"{self.where}: unknown keys {sorted(self.unread)}")


def _read(name: str) -> _Record:
    text = resources.files(DATA_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    return _Record(json.loads(text, parse_float=_no_float), name)


def _no_float(text: str) -> float:
    raise ValueError(f"demo reference data: {text} must be a JSON string (money and prices are exact decimals)")


def _fields(r: _Record, cls: type[Provider | Cluster | Namespace]) -> dict[str, Any]:
    """The string, integer and optional-string fields of a record without decimals, lists or booleans."""
    kinds = {"str": r.text, "int": r.integer, "str | None": r.opt_text}
    values = {name: kinds[hint](name) for name, hint in cls.__annotations__.items()}
    r.done()
    return values


def _billing_account(r: _Record) -> BillingAccount:
    b = BillingAccount(
        id=r.text("id"),
        name=r.text("name"),
        type=r.text("type"),
        currency=r.text("currency"),
        provider=r.integer("provider"),
        contracted_factor=r.decimal("contracted_factor"),
        tax_rate=r.decimal("tax_rate"),
        tax_name=r.text("tax_name"),
        contract_commitment=r.opt_integer("contract_commitment"),
        credit_services=r.texts("credit_services"),
        support_service=r.text("support_service"),
        invoice_id=r.text("invoice_id"),
    )
    r.done()
    return b


def _sub_account(r: _Record) -> SubAccount:
    s = SubAccount(
        id=r.text("id"),
        name=r.text("name"),
        type=r.text("type"),
        billing_account=r.integer("billing_account"),
        environment=r.text("environment"),
        resource_id_part=r.text("resource_id_part"),
        regions=r.texts("regions"),
    )
    r.done()
    return s


def _region(r: _Record) -> Region:
    g = Region(id=r.text("id"), name=r.text("name"), zones=r.texts("zones"))
    r.done()
    return g


def _sku(r: _Record) -> Sku:
    k = Sku(
        id=r.text("id"),
        desc=r.text("desc"),
        meter=r.text("meter"),
        price_usd=r.decimal("price_usd"),
        unit=r.text("unit"),
        consumed_unit=r.text("consumed_unit"),
        consumed_factor=r.integer("consumed_factor"),
        span=r.integer("span"),
        step=r.decimal("step"),
        partial_pct=r.integer("partial_pct"),
        details=r.opt_text("details"),
    )
    r.done()
    return k


def _service(r: _Record) -> Service:
    s = Service(
        name=r.text("name"),
        category=r.text("category"),
        subcategory=r.text("subcategory"),
        provider=r.integer("provider"),
        resource_type=r.text("resource_type"),
        weight=r.integer("weight"),
        resources=r.integer("resources"),
        location=r.integer("location"),
        daily=r.flag("daily"),
        per_resource=r.flag("per_resource"),
        spot=r.flag("spot"),
        id_template=r.text("id_template"),
        name_template=r.text("name_template"),
        skus=tuple(_sku(k) for k in r.records("skus")),
    )
    r.done()
    return s


def _commitment(r: _Record) -> Commitment:
    c = Commitment(
        id=r.text("id"),
        name=r.text("name"),
        category=r.text("category"),
        type=r.text("type"),
        resource_type=r.text("resource_type"),
        resource_name=r.text("resource_name"),
        billing_account=r.integer("billing_account"),
        sub_account=r.integer("sub_account"),
        service=r.text("service"),
        region=r.opt_text("region"),
        instance_sku=r.opt_text("instance_sku"),
        rate=r.opt_decimal("rate"),
        units=r.integer("units"),
        spend_factor=r.opt_decimal("spend_factor"),
        hourly=r.opt_decimal("hourly"),
        frequency=r.text("frequency"),
        cover_pct=r.integer("cover_pct"),
        contract_id=r.text("contract_id"),
        months_before_start=r.integer("months_before_start"),
        payment=r.text("payment"),
    )
    r.done()
    return c


def _negotiated(r: _Record) -> Negotiated:
    n = Negotiated(
        contract_id=r.text("contract_id"),
        id=r.text("id"),
        type=r.text("type"),
        description=r.text("description"),
        total=r.decimal("total"),
        currency=r.text("currency"),
        months_before_start=r.integer("months_before_start"),
    )
    r.done()
    return n
