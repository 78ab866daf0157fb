"""The demo's reference data as typed records, and what the SQL derives from them.

What the demo invents (providers, billing and sub accounts, regions, services and SKUs with list
prices, commitment discounts, negotiated contracts, the Kubernetes clusters whose node hours are split
over namespaces, tag values) is package data: JSON files in ``server/store/demo_data/``, read once by
``server.store.demo_load.reference()`` into the frozen records defined here. Prices and money are
``Decimal``. ``Reference`` also derives the lookups the SQL needs (the SKU list with one SKU per
commitment, name-to-index maps, the commitment covering each usage, the (account, service) pairs that
pay tax), and this module holds the calendar of commitment terms. The SQL lives in
``server.store.demo_macros``, ``server.store.demo_sql`` and ``server.store.demo_focus``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property

TERM_MONTHS = 36  # every commitment and contract runs three years


@dataclass(frozen=True)
class Provider:
    name: str
    tag_template: str  # flat key-value JSON; provider conventions differ in key spelling


@dataclass(frozen=True)
class BillingAccount:
    id: str
    name: str
    type: str
    currency: str
    provider: int
    contracted_factor: Decimal  # contracted price = list price × this (the negotiated discount)
    tax_rate: Decimal
    tax_name: str
    contract_commitment: int | None  # the negotiated commitment (index into the Contract Commitment rows)
    credit_services: tuple[str, ...]  # services an SLA credit may refer to
    support_service: str  # the service its adjustments refer to
    invoice_id: str  # InvoiceId template, {ym} = YYYYMM


@dataclass(frozen=True)
class SubAccount:
    id: str
    name: str
    type: str
    billing_account: int
    environment: str
    resource_id_part: str  # {a} in resource ids
    regions: tuple[str, ...]


@dataclass(frozen=True)
class Region:
    id: str
    name: str
    zones: tuple[str, ...]


@dataclass(frozen=True)
class Sku:
    id: str
    desc: str
    meter: str
    price_usd: Decimal  # list unit price, at most 8 decimal places
    unit: str  # PricingUnit
    consumed_unit: str
    consumed_factor: int  # ConsumedQuantity = PricingQuantity × factor
    span: int  # PricingQuantity = (1 + h mod span) × step ...
    step: Decimal
    partial_pct: int  # ... except this share of rows: a fraction of one unit (partial hours)
    details: str | None  # SkuPriceDetails


@dataclass(frozen=True)
class Service:
    name: str
    category: str
    subcategory: str
    provider: int
    resource_type: str
    weight: int  # share of usage rows (0: no usage; used by adjustments)
    resources: int  # resource pool per 50k rows
    location: int  # 0 global, 1 regional, 2 zonal
    daily: bool  # daily charge periods instead of hourly
    per_resource: bool  # a resource always bills one SKU (its instance type)
    spot: bool  # some usage is spot-priced (PricingCategory Dynamic)
    id_template: str  # {a} account part, {r} region, {z} zone, {e} environment, {x} hex
    name_template: str
    skus: tuple[Sku, ...]


@dataclass(frozen=True)
class Commitment:
    """A commitment discount (savings plan, reservation, CUD); also a Contract Commitment row."""

    id: str
    name: str
    category: str  # Spend | Usage
    type: str
    resource_type: str
    resource_name: str
    billing_account: int
    sub_account: int
    service: str
    region: str | None  # reservations are regional
    instance_sku: str | None  # reservations cover one instance type
    rate: Decimal | None  # reservation: effective hourly rate per instance
    units: int  # reservation: instances reserved
    spend_factor: Decimal | None  # savings plan: effective cost = list cost × factor
    hourly: Decimal | None  # savings plan: commitment per hour
    frequency: str  # Recurring (monthly fee) | One-Time (all upfront, bought on the first day)
    cover_pct: int  # share of eligible usage it covers
    contract_id: str
    months_before_start: int  # the term starts this many months before the demo's first month
    payment: str


@dataclass(frozen=True)
class Negotiated:
    """A negotiated spend commitment (AWS EDP, Azure MACC): a Contract Commitment row after the commitment
    discounts, referenced by the ContractApplied of the billing account's on-demand charges."""

    contract_id: str
    id: str
    type: str
    description: str
    total: Decimal
    currency: str
    months_before_start: int


@dataclass(frozen=True)
class Cluster:
    """A Kubernetes cluster whose node hours are split over namespaces (split cost allocation)."""

    id: str
    billing_account: int
    sub_account: int
    service: str
    instance_sku: str
    region: str
    zone: str | None
    vcpus: int  # per node
    node_id: str  # templates, {n} = the node number as 4 hex digits
    node_name: str


@dataclass(frozen=True)
class Namespace:
    name: str
    team: str


@dataclass(frozen=True)
class Reference:
    """All reference data; the lists keep the order of the JSON files (the SQL indexes into them)."""

    providers: tuple[Provider, ...]
    billing_accounts: tuple[BillingAccount, ...]
    sub_accounts: tuple[SubAccount, ...]
    regions: tuple[Region, ...]
    services: tuple[Service, ...]
    commitments: tuple[Commitment, ...]
    negotiated: tuple[Negotiated, ...]
    clusters: tuple[Cluster, ...]
    nodes_per_cluster: int
    namespaces: tuple[Namespace, ...]
    allocation_method: str  # AllocatedMethodId of the split rows
    teams: tuple[str, ...]  # tag values
    cost_centers: tuple[str, ...]
    apps: tuple[str, ...]

    @cached_property
    def service_index(self) -> dict[str, int]:
        return {s.name: i for i, s in enumerate(self.services)}

    @cached_property
    def region_index(self) -> dict[str, int]:
        return {r.id: i for i, r in enumerate(self.regions)}

    @cached_property
    def skus(self) -> tuple[Sku, ...]:
        """Every service's SKUs, then one per commitment (what its purchase rows bill)."""
        services = tuple(k for s in self.services for k in s.skus)
        return services + tuple(self._commitment_sku(c) for c in self.commitments)

    @cached_property
    def sku_index(self) -> dict[str, int]:
        return {k.id: i for i, k in enumerate(self.skus)}

    @cached_property
    def tax_pairs(self) -> list[tuple[int, int]]:
        """(billing account, service) pairs with a Tax row each month: every usage service of the provider."""
        return [
            (b, si)
            for b, ba in enumerate(self.billing_accounts)
            for si, s in enumerate(self.services)
            if s.provider == ba.provider and s.weight > 0
        ]

    def currency(self, c: Commitment) -> str:
        return self.billing_accounts[c.billing_account].currency

    def account_sub_accounts(self, account: int) -> tuple[int, int]:
        """First index and count of the billing account's sub accounts (they are contiguous)."""
        idx = [i for i, s in enumerate(self.sub_accounts) if s.billing_account == account]
        assert idx == list(range(idx[0], idx[0] + len(idx)))
        return idx[0], len(idx)

    def eligibility(self) -> list[int]:
        """The commitment (1-based; 0: none) covering usage of (billing account, sku, region); RIs win over SPs."""
        skus, regions, commitments = self.skus, self.regions, self.commitments
        table = [0] * (len(self.billing_accounts) * len(skus) * len(regions))
        for ci in sorted(range(len(commitments)), key=lambda i: commitments[i].category == "Usage"):
            c = commitments[ci]
            for sku_index, sku in enumerate(skus):
                if sku not in self.services[self.service_index[c.service]].skus or c.instance_sku not in (None, sku.id):
                    continue
                for rg, region in enumerate(regions):
                    if c.region in (None, region.id):
                        table[(c.billing_account * len(skus) + sku_index) * len(regions) + rg] = ci + 1
        return table

    def _commitment_sku(self, c: Commitment) -> Sku:
        currency = self.currency(c)
        term = '{"x_PurchaseTerm":"3yr","x_PaymentOption":"' + c.payment + '"}'
        one = Decimal("1")
        if c.category == "Spend":
            return Sku(f"COMMIT-{c.resource_name}", c.name, "Commitment", one, currency, currency, 1, 1, one, 0, term)
        assert c.rate is not None
        return Sku(f"COMMIT-{c.resource_name}", c.name, "Commitment", c.rate, "Hours", "Hours", 1, 1, one, 0, term)


# -- the calendar of commitment terms ------------------------------------------------------------


def add_months(day: datetime, months: int) -> datetime:
    index = day.year * 12 + day.month - 1 + months
    return day.replace(year=index // 12, month=index % 12 + 1)


def commitment_term(c: Commitment, start: datetime) -> tuple[datetime, datetime]:
    begin = add_months(start, -c.months_before_start)
    return begin, add_months(begin, TERM_MONTHS)


def term_hours(c: Commitment, start: datetime) -> int:
    begin, end = commitment_term(c, start)
    return int((end - begin).total_seconds()) // 3600


def upfront(c: Commitment, start: datetime) -> Decimal:
    """What an all-upfront savings plan costs: its hourly commitment over the whole term."""
    return Decimal(c.hourly or 0) * term_hours(c, start)
