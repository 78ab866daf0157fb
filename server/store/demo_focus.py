"""The FOCUS side of the demo: the 65 Cost and Usage columns of a month, and the Contract Commitment rows.

This module owns the mapping from the internal row shape of ``server.store.demo_sql`` to typed FOCUS
Cost and Usage columns (``month_sql``, in catalog order, one projection for every kind of row), and the
Contract Commitment dataset (``contract_commitment_sql``): one row per commitment discount and per
negotiated spend commitment of ``server.store.demo_reference``, with exact ``Decimal`` amounts.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from server.store.demo_load import reference
from server.store.demo_macros import lit
from server.store.demo_reference import TERM_MONTHS, add_months, commitment_term, term_hours, upfront
from server.store.demo_sql import Month, metered
from tools.catalog import DataType, contract_commitment, cost_and_usage

PARQUET_TYPES = {
    DataType.STRING: "VARCHAR",
    DataType.DECIMAL: "DECIMAL(38,18)",
    DataType.DATETIME: "TIMESTAMP",
    DataType.JSON: "VARCHAR",
}
_CONTRACT_APPLIED = (
    """CASE WHEN ca_cc IS NOT NULL THEN '{"Elements":[{"ContractId":"' || x.contract || """
    """'","ContractCommitmentId":"' || x.id || '","ContractCommitmentAppliedCost":' || """
    """coalesce(dectxt(ca_cost), 'null') || ',"ContractCommitmentAppliedQuantity":' || """
    """coalesce(dectxt(ca_qty), 'null') || ',"ContractCommitmentAppliedUnit":' || """
    """coalesce('"' || ca_unit || '"', 'null') || '}]}' END"""
)


def focus_exprs(m: Month) -> dict[str, str]:
    """The SQL of each FOCUS Cost and Usage column over the internal row shape and its lookups."""
    # fmt: off
    return {
        "AllocatedMethodId": "am_id", "AllocatedMethodDetails": "a_details", "AllocatedResourceId": "ar_id",
        "AllocatedResourceName": "ar_name", "AllocatedTags": "a_tags", "AvailabilityZone": "az",
        "BilledCost": "billed", "BillingAccountId": "b.id", "BillingAccountName": "b.name",
        "BillingAccountType": "b.type", "BillingCurrency": "b.cur", "BillingPeriodEnd": lit(m.end, "TIMESTAMP"),
        "BillingPeriodStart": lit(m.start, "TIMESTAMP"), "CapacityReservationId": "NULL",
        "CapacityReservationStatus": "NULL", "ChargeCategory": "cat", "ChargeClass": "NULL",
        "ChargeDescription": "descr", "ChargeFrequency": "freq", "ChargePeriodEnd": "cpe", "ChargePeriodStart": "cps",
        "CommitmentDiscountCategory": "c.cat", "CommitmentDiscountId": "c.id", "CommitmentDiscountName": "c.name",
        "CommitmentDiscountQuantity": "cdq", "CommitmentDiscountStatus": "cstatus", "CommitmentDiscountType": "c.type",
        "CommitmentDiscountUnit": "CASE WHEN cdq IS NOT NULL THEN c.unit END", "ConsumedQuantity": "cq",
        "ConsumedUnit": "CASE WHEN cq IS NOT NULL THEN u.cunit END", "ContractApplied": _CONTRACT_APPLIED,
        "ContractedCost": "cc", "ContractedUnitPrice": "pc", "EffectiveCost": "eff", "HostProviderName": "pv.name",
        "InvoiceId": f"{lit(m.invoices, 'VARCHAR[]')}[ba + 1]", "InvoiceIssuerName": "pv.name", "ListCost": "lc",
        "ListUnitPrice": "p", "PricingCategory": "pcat", "PricingCurrency": "b.cur",
        "PricingCurrencyContractedUnitPrice": "pc", "PricingCurrencyEffectiveCost": "eff",
        "PricingCurrencyListUnitPrice": "p", "PricingQuantity": "q",
        "PricingUnit": "CASE WHEN q IS NOT NULL THEN u.punit END", "ProviderName": "pv.name",
        "PublisherName": "pv.name", "RegionId": "g.id", "RegionName": "g.name", "ResourceId": "rid",
        "ResourceName": "rname", "ResourceType": "rtype", "ServiceProviderName": "pv.name", "ServiceCategory": "v.cat",
        "ServiceName": "v.name", "ServiceSubcategory": "v.sub", "SkuId": "u.id", "SkuMeter": "u.meter",
        "SkuPriceDetails": "u.details",
        "SkuPriceId": "u.id || '.' || b.cur || CASE WHEN spot THEN '.SPOT' ELSE '' END",
        "SubAccountId": "s.id", "SubAccountName": "s.name", "SubAccountType": "s.type", "Tags": "tags",
    }
    # fmt: on


def month_sql(m: Month) -> str:
    """All rows of one billing period as typed FOCUS Cost and Usage columns, in catalog order."""
    exprs = focus_exprs(m)
    catalog = cost_and_usage()
    assert set(exprs) == set(catalog.ids), set(exprs) ^ set(catalog.ids)
    rows = "\nUNION ALL\n".join([*metered(m), "SELECT * FROM fixed"])
    cols = ",\n  ".join(f'CAST({exprs[c.id]} AS {PARQUET_TYPES[c.data_type]}) AS "{c.id}"' for c in catalog.columns)
    return f"""SELECT
  {cols}
FROM (SELECT r.*, d_ba()[r.ba + 1] AS b, d_prov()[d_ba()[r.ba + 1].p + 1] AS pv, d_sa()[r.sa + 1] AS s,
             d_svc()[r.si + 1] AS v, d_sku()[r.sku + 1] AS u, d_rg()[r.rg + 1] AS g, d_commit()[r.cidx + 1] AS c,
             d_cc()[r.ca_cc + 1] AS x
      FROM ({rows}) r)"""


# -- Contract Commitment -----------------------------------------------------------------------


def contract_commitment_sql(start: datetime) -> str:
    """The Contract Commitment dataset: one row per commitment discount and per negotiated commitment."""
    ref = reference()
    rows: list[dict[str, Any]] = []
    for c in ref.commitments:
        begin, end = commitment_term(c, start)
        qty = Decimal(c.units * term_hours(c, start)) if c.category == "Usage" else None
        cost = Decimal(c.rate or 0) * qty if qty is not None else upfront(c, start)
        rows.append({"ContractCommitmentId": c.id, "ContractCommitmentType": c.type,
                     "ContractCommitmentCategory": c.category, "ContractCommitmentCost": cost,
                     "ContractCommitmentQuantity": qty, "ContractCommitmentUnit": "Hours" if qty else None,
                     "ContractCommitmentDescription": c.name, "ContractId": c.contract_id,
                     "BillingCurrency": ref.currency(c), "begin": begin, "end": end})  # fmt: skip
    for n in ref.negotiated:
        begin = add_months(start, -n.months_before_start)
        rows.append({"ContractCommitmentId": n.id, "ContractCommitmentType": n.type,
                     "ContractCommitmentCategory": "Spend", "ContractCommitmentCost": n.total,
                     "ContractCommitmentDescription": n.description, "ContractId": n.contract_id,
                     "BillingCurrency": n.currency, "begin": begin, "end": add_months(begin, TERM_MONTHS)})  # fmt: skip
    columns = contract_commitment().columns
    values = []
    for row in rows:
        for prefix in ("ContractCommitmentPeriod", "ContractPeriod"):  # a contract spans its one commitment
            row[prefix + "Start"], row[prefix + "End"] = row["begin"], row["end"]
        values.append("(" + ", ".join(lit(row.get(c.id), PARQUET_TYPES[c.data_type]) for c in columns) + ")")
    names = ", ".join(f'"{c.id}"' for c in columns)
    return "SELECT * FROM (VALUES\n  " + ",\n  ".join(values) + f") t({names})"
