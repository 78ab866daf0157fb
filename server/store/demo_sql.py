"""The SQL of the demo's rows: every kind of row as a streaming projection over ``range(n)``.

This module owns the row generation that ``server.store.demo`` drives month by month (``Month`` is
one billing period of the plan). The fact rows are pure projections over ``range(n)`` that index the
reference lists (the ``d_*()`` macros of ``server.store.demo_macros``) with hashes of ``(seed, month,
row index)``, so a month streams straight into Parquet without joins or sorts.

Every kind of row (usage, unused commitment, split allocation, and the month's fixed rows: purchases,
taxes, credits, adjustments) first yields the same *internal* columns (``INTERNAL``: indexes into the
reference lists plus quantities, prices and costs); ``server.store.demo_focus`` maps them to the 65
FOCUS columns once. Money is exact: prices are ``DECIMAL`` literals, quantities are integers times a
decimal step, and every cost is a product of those, so ``ListCost = ListUnitPrice × PricingQuantity``
holds exactly. Decimal division (which DuckDB turns into DOUBLE) is never used; casts only widen or
keep the scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from server.store.demo_load import reference
from server.store.demo_macros import FACTOR, PRICE, lit

SPOT_FACTOR = "0.30"  # spot price = list price × this
HOUR_STRIDE = 409  # a prime: (409·i + offset) mod hours visits every hour of a month once

# -- the internal row shape shared by every kind of row ----------------------------------------

COST = "DECIMAL(38,16)"  # values never carry more than 14 places: casting to it never rounds
QTY = "DECIMAL(38,16)"  # a savings plan purchase's quantity is a sum of costs
# fmt: off
INTERNAL: dict[str, str] = {
    "ba": "INTEGER", "sa": "INTEGER", "si": "INTEGER", "sku": "INTEGER", "rg": "INTEGER", "az": "VARCHAR",
    "cps": "TIMESTAMP", "cpe": "TIMESTAMP", "cat": "VARCHAR", "freq": "VARCHAR", "pcat": "VARCHAR",
    "descr": "VARCHAR", "spot": "BOOLEAN", "q": QTY, "p": PRICE, "pc": "DECIMAL(18,10)", "cq": QTY, "lc": COST,
    "cc": COST, "billed": COST, "eff": COST, "cidx": "INTEGER", "cstatus": "VARCHAR", "cdq": COST, "rid": "VARCHAR",
    "rname": "VARCHAR", "rtype": "VARCHAR", "tags": "VARCHAR", "am_id": "VARCHAR", "ar_id": "VARCHAR",
    "ar_name": "VARCHAR", "a_tags": "VARCHAR", "a_details": "VARCHAR", "ca_cc": "INTEGER", "ca_cost": COST,
    "ca_qty": QTY, "ca_unit": "VARCHAR",
}
# fmt: on


def internal_select(exprs: dict[str, str], source: str, order_by: str = "") -> str:
    """One kind of row in the internal shape; columns not given are NULL."""
    unknown = set(exprs) - set(INTERNAL)
    assert not unknown, unknown
    cols = ",\n  ".join(f"CAST({exprs.get(n, 'NULL')} AS {t}) AS {n}" for n, t in INTERNAL.items())
    return f"SELECT\n  {cols}\nFROM {source}" + (f"\nORDER BY {order_by}" if order_by else "")


@dataclass(frozen=True)
class Month:
    """One billing period to generate, and how many rows of each kind it gets."""

    index: int
    seed: int
    start: datetime
    end: datetime
    usage: int
    unused: int
    alloc: int
    active: list[int]  # commitments active this month
    purchases: list[tuple[int, str, Decimal | None]]  # (commitment, frequency, upfront amount) bought this month
    invoices: list[str]  # InvoiceId per billing account
    resource_scale: int  # resource pools grow with the row count

    @property
    def hours(self) -> int:
        return int((self.end - self.start).total_seconds()) // 3600

    @property
    def days(self) -> int:
        return self.hours // 24

    @property
    def fixed(self) -> int:
        """Purchases, taxes, credits and adjustments."""
        ref = reference()
        return len(self.purchases) + len(ref.tax_pairs) + 2 * len(ref.billing_accounts)

    def h(self, *parts: str) -> str:
        """SQL: a 64-bit hash of the seed, the month and ``parts``."""
        return f"hash({self.seed}, {self.index}, {', '.join(parts)})"

    def at_hour(self, hour: str) -> str:
        return f"TIMESTAMP '{self.start:%Y-%m-%d}' + to_hours(CAST({hour} AS BIGINT))"


def _price(ba: str, sku: str) -> str:
    return f"CAST(CASE WHEN {ba}.cur = 'EUR' THEN {sku}.p_eur ELSE {sku}.p_usd END AS {PRICE})"


def _frac(h: str) -> str:
    """SQL: a decimal in [0.0001, 0.9999] with 4 places, from a hash."""
    return f"(CAST(1 + {h} % 9999 AS DECIMAL(18,0)) * CAST('0.0001' AS DECIMAL(5,4)))"


def _pick(lst: str, h: str) -> str:
    return f"{lst}[1 + CAST(({h}) % len({lst}) AS INTEGER)]"


def _subst(template: str, pairs: dict[str, str]) -> str:
    expr = template
    for key, value in pairs.items():
        expr = f"replace({expr}, '{{{key}}}', {value})"
    return expr


def _usage_rows(m: Month) -> str:
    """Usage rows before the internal shape: service, account, resource, SKU, commitment, prices, costs."""
    ref = reference()
    nsku, nrg, npairs = len(ref.skus), len(ref.regions), len(ref.tax_pairs)
    day = f"TIMESTAMP '{m.start:%Y-%m-%d}'"
    return f"""(
WITH u1 AS (
  SELECT k, {m.h("k", "'res'")} AS hr, {m.h("k", "'qty'")} AS hq, {m.h("k", "'time'")} AS ht, {m.h("k", "'mix'")} AS hm,
    CASE WHEN k < {npairs} THEN d_taxpairs()[k + 1].si ELSE {_pick("d_wsvc()", m.h("k", "'svc'"))} END AS si
  FROM range({m.usage}) t(k)
), u2 AS (
  SELECT *, d_svc()[si + 1] AS v,
    CASE WHEN k < {npairs} THEN d_taxpairs()[k + 1].ba
         ELSE {_pick("d_prov()[d_svc()[si + 1].p + 1].bas", "hr >> 48")} END AS ba
  FROM u1
), u3 AS (
  SELECT *, d_prov()[v.p + 1] AS pv, d_ba()[ba + 1] AS b, hash(si, ba, hr % (v.n_res * {m.resource_scale})) AS rh
  FROM u2
), u4 AS (
  SELECT *, b.sa_lo + CAST(rh % b.sa_n AS INTEGER) AS sa,
    v.sku_lo + CAST(CASE WHEN v.per_res THEN rh >> 16 ELSE hm >> 8 END % v.sku_n AS INTEGER) AS sku
  FROM u3
), u5 AS (
  SELECT *, d_sa()[sa + 1] AS s, d_sku()[sku + 1] AS u FROM u4
), u6 AS (
  SELECT *, CASE WHEN v.loc > 0 THEN {_pick("s.rgs", "rh >> 8")} END AS rg FROM u5
), u7 AS (
  SELECT *, d_rg()[rg + 1] AS g,
    CASE WHEN rg IS NOT NULL AND k >= {npairs} THEN d_elig()[1 + (ba * {nsku} + sku) * {nrg} + rg] ELSE 0 END AS e
  FROM u6
), u8 AS (
  SELECT *, CASE WHEN e > 0 AND (hm >> 20) % 100 < d_commit()[e].cover THEN e - 1 END AS cidx FROM u7
), u9 AS (
  SELECT *, d_commit()[cidx + 1] AS c, cidx IS NULL AND v.spot AND (hm >> 40) % 100 < 8 AS spot,
    CAST(CASE WHEN (hq >> 32) % 100 < u.part THEN {_frac("hq")}
         ELSE CAST(1 + (hq >> 8) % u.span AS DECIMAL(18,0)) * u.step END AS DECIMAL(18,6)) AS q,
    {_price("b", "u")} AS p,
    CASE WHEN v.loc = 2 AND len(g.azs) > 0 THEN {_pick("g.azs", "rh >> 40")} END AS az,
    CASE WHEN v.daily THEN {day} + to_days(CAST(ht % {m.days} AS INTEGER)) ELSE {m.at_hour(f"ht % {m.hours}")} END
      AS cps
  FROM u8
), u10 AS (
  SELECT *, CAST(p * CASE WHEN spot THEN CAST('{SPOT_FACTOR}' AS {FACTOR}) ELSE b.cf END AS DECIMAL(18,10)) AS pc
  FROM u9
), u11 AS (
  SELECT *, CAST(p * q AS {COST}) AS lc, CAST(pc * q AS {COST}) AS cc FROM u10
)
SELECT *,
  CAST(CASE WHEN cidx IS NULL THEN cc WHEN c.cat = 'Usage' THEN q * c.rate ELSE lc * c.spf END AS {COST}) AS eff,
  printf('%012x', rh >> 16) AS x
FROM u11)"""


def usage_sql(m: Month) -> str:
    """Metered usage: on-demand, spot, and commitment-covered (CommitmentDiscountStatus Used).

    The first rows of a month go one to each (billing account, service) pair, uncovered, so every
    pair has billed usage each month (its Tax row and any SLA credit are then never zero). The
    others pick a service by weight, then a billing account of its provider, then a resource.
    """
    ids = {"a": "s.rid", "r": "coalesce(g.id, '')", "z": "coalesce(az, '')", "e": "s.env", "x": "x"}
    tags = {"env": "s.env", "cc": _pick("d_ccs()", "rh >> 24"), "team": _pick("d_teams()", "rh >> 28"),
            "app": _pick("d_apps()", "rh >> 32")}  # fmt: skip
    # fmt: off
    return internal_select({
        "ba": "ba", "sa": "sa", "si": "si", "sku": "sku", "rg": "rg", "az": "az", "cps": "cps",
        "cpe": "cps + CASE WHEN v.daily THEN INTERVAL 1 DAY ELSE INTERVAL 1 HOUR END", "cat": "'Usage'",
        "freq": "'Usage-Based'",
        "pcat": "CASE WHEN cidx IS NOT NULL THEN 'Committed' WHEN spot THEN 'Dynamic' ELSE 'Standard' END",
        "descr": "u.desc || CASE WHEN cidx IS NOT NULL THEN ' (' || c.type || ')' WHEN spot THEN ' (spot)' ELSE '' END",
        "spot": "spot", "q": "q", "p": "p", "pc": "pc", "cq": "q * u.cfac", "lc": "lc", "cc": "cc",
        "billed": "CASE WHEN cidx IS NULL THEN cc ELSE 0 END", "eff": "eff", "cidx": "cidx",
        "cstatus": "CASE WHEN cidx IS NOT NULL THEN 'Used' END",
        "cdq": "CASE WHEN cidx IS NULL THEN NULL WHEN c.cat = 'Usage' THEN q ELSE eff END",
        "rid": _subst("v.rid", ids), "rname": _subst("v.rname", ids), "rtype": "v.rtype",
        "tags": f"CASE WHEN rh % 10 <> 0 THEN {_subst('pv.tags', tags)} END",
        "ca_cc": "coalesce(cidx, b.cc)",
        "ca_cost": "CASE WHEN cidx IS NULL AND b.cc IS NOT NULL THEN cc WHEN c.cat = 'Spend' THEN eff END",
        "ca_qty": "CASE WHEN c.cat = 'Usage' THEN q END", "ca_unit": "CASE WHEN c.cat = 'Usage' THEN 'Hours' END",
    }, _usage_rows(m))
    # fmt: on


def unused_sql(m: Month) -> str:
    """Unused commitment (CommitmentDiscountStatus Unused): at most one row per commitment and hour."""
    active, n = lit(m.active, "INTEGER[]"), len(m.active)
    hour = f"({HOUR_STRIDE} * slot + {m.h('ci', chr(39) + 'off' + chr(39))} % {m.hours}) % {m.hours}"
    base = f"""(
WITH x1 AS (
  SELECT {active}[1 + k % {n}] AS ci, k // {n} AS slot, {m.h("k", "'unused'")} AS hx FROM range({m.unused}) t(k)
), x2 AS (
  SELECT *, d_commit()[ci + 1] AS c,
    {m.at_hour(hour)} AS cps
  FROM x1
), x3 AS (
  SELECT *, d_ba()[c.ba + 1] AS b, d_sku()[coalesce(c.isku, c.csku) + 1] AS u,
    CAST(CASE WHEN c.cat = 'Spend' THEN c.hourly ELSE CAST(c.units AS DECIMAL(18,0)) END * {_frac("hx")}
         AS DECIMAL(18,6)) AS q
  FROM x2
), x4 AS (
  SELECT *, {_price("b", "u")} AS p FROM x3
), x5 AS (
  SELECT *, CAST(CASE WHEN c.cat = 'Spend' THEN p ELSE p * b.cf END AS DECIMAL(18,10)) AS pc FROM x4
)
SELECT *, CAST(p * q AS {COST}) AS lc, CAST(pc * q AS {COST}) AS cc,
  CAST(CASE WHEN c.cat = 'Spend' THEN q ELSE q * c.rate END AS {COST}) AS eff
FROM x5)"""
    # fmt: off
    return internal_select({
        "ba": "c.ba", "sa": "c.sa", "si": "c.si", "sku": "coalesce(c.isku, c.csku)", "rg": "c.rg", "cps": "cps",
        "cpe": "cps + INTERVAL 1 HOUR", "cat": "'Usage'", "freq": "'Usage-Based'", "pcat": "'Committed'",
        "descr": "c.name || ' unused commitment'", "spot": "FALSE", "q": "q", "p": "p", "pc": "pc", "lc": "lc",
        "cc": "cc", "billed": "0", "eff": "eff", "cidx": "ci", "cstatus": "'Unused'",
        "cdq": "CASE WHEN c.cat = 'Spend' THEN eff ELSE q END", "rid": "c.id", "rname": "c.rname",
        "rtype": "c.rtype", "ca_cc": "ci", "ca_cost": "CASE WHEN c.cat = 'Spend' THEN eff END",
        "ca_qty": "CASE WHEN c.cat = 'Usage' THEN q END", "ca_unit": "CASE WHEN c.cat = 'Usage' THEN 'Hours' END",
    }, base)
    # fmt: on


def allocation_sql(m: Month) -> str:
    """Kubernetes node hours split over three namespaces plus idle capacity; the ratios sum to exactly 1."""
    ref = reference()
    nn = len(ref.clusters) * ref.nodes_per_cluster
    r = [f"(CAST(5 + {m.h('g', str(i))} % 26 AS DECIMAL(18,0)) * CAST('0.01' AS DECIMAL(3,2)))" for i in range(3)]
    hour = f"({HOUR_STRIDE} * (g // {nn}) + {m.h(chr(39) + 'alloc' + chr(39))} % {m.hours}) % {m.hours}"
    base = f"""(
WITH a1 AS (
  SELECT k // 4 AS g, CAST(k % 4 AS INTEGER) AS mbr FROM range({m.alloc}) t(k)
), a2 AS (
  SELECT *, d_node()[1 + g % {nn}] AS nd,
    {m.at_hour(hour)} AS cps,
    CAST(CASE mbr WHEN 0 THEN {r[0]} WHEN 1 THEN {r[1]} WHEN 2 THEN {r[2]} ELSE 1 - {r[0]} - {r[1]} - {r[2]} END
         AS DECIMAL(18,2)) AS ratio,
    CASE WHEN mbr < 3 THEN d_ns()[1 + CAST(({m.h("g", "'ns'")} % 6 + mbr) % 6 AS INTEGER)] END AS ns
  FROM a1
), a3 AS (
  SELECT *, d_ba()[nd.ba + 1] AS b, d_sku()[nd.sku + 1] AS u FROM a2
), a4 AS (
  SELECT *, {_price("b", "u")} AS p FROM a3
), a5 AS (
  SELECT *, CAST(p * b.cf AS DECIMAL(18,10)) AS pc FROM a4
)
SELECT *, CAST(p * ratio AS {COST}) AS lc, CAST(pc * ratio AS {COST}) AS cc FROM a5)"""
    details = (
        """'{"Elements":[{"AllocatedRatio":' || dectxt(ratio) || ',"UsageUnit":"vCPU-Hours","UsageQuantity":' """
        """|| dectxt(ratio * nd.vcpu) || '}]}'"""
    )
    # fmt: off
    return internal_select({
        "ba": "nd.ba", "sa": "nd.sa", "si": "nd.si", "sku": "nd.sku", "rg": "nd.rg", "az": "nd.az", "cps": "cps",
        "cpe": "cps + INTERVAL 1 HOUR", "cat": "'Usage'", "freq": "'Usage-Based'", "pcat": "'Standard'",
        "descr": "u.desc || CASE WHEN ns IS NULL THEN ' (idle capacity)' "
                 "ELSE ' (split to namespace ' || ns.name || ')' END",
        "spot": "FALSE", "q": "ratio", "p": "p", "pc": "pc", "cq": "ratio", "lc": "lc", "cc": "cc", "billed": "cc",
        "eff": "cc", "rid": "nd.rid", "rname": "nd.rname", "rtype": "d_svc()[nd.si + 1].rtype", "tags": "nd.tags",
        "am_id": f"'{ref.allocation_method}'",
        "ar_id": "CASE WHEN ns IS NOT NULL THEN nd.cluster || '/namespaces/' || ns.name END", "ar_name": "ns.name",
        "a_tags": """CASE WHEN ns IS NOT NULL THEN '{"k8s-namespace":"' || ns.name || '","k8s-owner":"' """
                  """|| ns.team || '"}' END""",
        "a_details": details, "ca_cc": "b.cc", "ca_cost": "CASE WHEN b.cc IS NOT NULL THEN cc END",
    }, base)
    # fmt: on


def metered(m: Month) -> list[str]:
    return [usage_sql(m)] + ([unused_sql(m)] if m.unused else []) + ([allocation_sql(m)] if m.alloc else [])


def aggregate_sql(m: Month) -> str:
    """Table ``agg``: per-commitment and per (billing account, service) sums of the month's metered rows."""
    rows = "\nUNION ALL\n".join(metered(m))
    return f"""CREATE OR REPLACE TABLE agg AS
SELECT grouping(cidx) AS by_account, cidx, ba, si, sum(eff) AS eff, sum(cdq) AS cdq, sum(billed) AS billed
FROM ({rows})
GROUP BY GROUPING SETS ((cidx), (ba, si))"""


def fixed_sql(m: Month) -> list[str]:
    """Statements building table ``fixed``: the month's purchases, taxes, credits and adjustments.

    Their amounts come from table ``agg``: a recurring commitment fee is exactly the amortized cost of
    its Used and Unused rows of the month, a tax is its rate on the billed cost, an SLA credit a share.
    """
    parts = ([_purchases_sql(m)] if m.purchases else []) + [_taxes_sql(m), _credits_sql(m), _adjustments_sql(m)]
    return [f"CREATE OR REPLACE TABLE fixed AS {parts[0]}"] + [f"INSERT INTO fixed {sql}" for sql in parts[1:]]


_MONEY = {"lc": "amt", "cc": "amt", "billed": "amt", "eff": "amt", "spot": "FALSE", "freq": "'One-Time'"}


def _purchases_sql(m: Month) -> str:
    """A Purchase row per commitment bought this month: a recurring monthly fee or an upfront payment."""
    start = f"TIMESTAMP '{m.start:%Y-%m-%d}'"
    values = ", ".join(f"({i}, {ci}, '{f}', {lit(up, 'DECIMAL(18,2)')})" for i, (ci, f, up) in enumerate(m.purchases))
    # fmt: off
    return internal_select({
        "ba": "c.ba", "sa": "c.sa", "si": "c.si", "sku": "c.csku", "rg": "c.rg", "cps": start,
        "cpe": f"{start} + INTERVAL 1 DAY", "cat": "'Purchase'", "freq": "freq", "pcat": "'Standard'",
        "descr": "c.name || CASE freq WHEN 'One-Time' THEN ' upfront payment' ELSE ' monthly fee' END",
        "spot": "FALSE", "q": "q", "p": "p", "pc": "p", "lc": "p * q", "cc": "p * q", "billed": "p * q", "eff": "0",
        "cidx": "ci", "cdq": "q", "rid": "c.id", "rname": "c.rname", "rtype": "c.rtype", "ca_cc": "ci",
        "ca_cost": "CASE WHEN c.cat = 'Spend' THEN p * q END", "ca_qty": "CASE WHEN c.cat = 'Usage' THEN q END",
        "ca_unit": "CASE WHEN c.cat = 'Usage' THEN 'Hours' END",
    }, f"""(SELECT *, CAST(CASE WHEN c.cat = 'Usage' THEN c.rate ELSE 1 END AS {PRICE}) AS p,
       CAST(CASE WHEN up IS NOT NULL THEN up WHEN c.cat = 'Usage' THEN coalesce(s_cdq, 0)
            ELSE coalesce(s_eff, 0) END AS {QTY}) AS q
     FROM (SELECT t.*, d_commit()[t.ci + 1] AS c, a.eff AS s_eff, a.cdq AS s_cdq
           FROM (VALUES {values}) t(ord, ci, freq, up)
           LEFT JOIN agg a ON a.by_account = 0 AND a.cidx = t.ci))""", "ord")
    # fmt: on


def _taxes_sql(m: Month) -> str:
    """A Tax row per (billing account, usage service) pair: its rate on the pair's billed cost."""
    end = f"TIMESTAMP '{m.end:%Y-%m-%d}'"
    # fmt: off
    return internal_select({
        "ba": "ba", "si": "si", "cps": f"{end} - INTERVAL 1 DAY", "cpe": end, "cat": "'Tax'",
        "descr": "b.tax_name || ' on ' || d_svc()[si + 1].name", **_MONEY,
    }, """(SELECT t.*, round(coalesce(a.billed, 0) * b.tax, 2) AS amt
     FROM (SELECT ord, tp.ba AS ba, tp.si AS si, d_ba()[tp.ba + 1] AS b
           FROM (SELECT unnest(d_taxpairs()) AS tp, unnest(range(len(d_taxpairs()))) AS ord)) t
     LEFT JOIN agg a ON a.by_account = 1 AND a.ba = t.ba AND a.si = t.si)""", "ord")
    # fmt: on


def _credits_sql(m: Month) -> str:
    """An SLA Credit per billing account: a negative share of one of its services' billed cost."""
    start = f"TIMESTAMP '{m.start:%Y-%m-%d}'"
    # fmt: off
    return internal_select({
        "ba": "ba", "si": "si", "cps": f"{start} + INTERVAL 14 DAY", "cpe": f"{start} + INTERVAL 15 DAY",
        "cat": "'Credit'", "descr": "'SLA service credit for ' || d_svc()[si + 1].name", **_MONEY,
    }, f"""(SELECT t.*, -greatest(round(coalesce(a.billed, 0) * CAST(5 + {m.h("t.ba", "'rate'")} % 6
                       AS DECIMAL(18,0)) * CAST('0.01' AS DECIMAL(3,2)), 2), 0.01) AS amt
     FROM (SELECT ba, b, {_pick("b.credit_sis", m.h("ba", "'credit'"))} AS si
           FROM (SELECT ba, d_ba()[ba + 1] AS b
                 FROM (SELECT CAST(range AS INTEGER) AS ba FROM range({len(reference().billing_accounts)})))) t
     LEFT JOIN agg a ON a.by_account = 1 AND a.ba = t.ba AND a.si = t.si)""", "ba")
    # fmt: on


def _adjustments_sql(m: Month) -> str:
    """A support-fee Adjustment per billing account (positive or negative)."""
    start = f"TIMESTAMP '{m.start:%Y-%m-%d}'"
    # fmt: off
    return internal_select({
        "ba": "ba", "si": "d_ba()[ba + 1].adj_si", "cps": f"{start} + INTERVAL 19 DAY",
        "cpe": f"{start} + INTERVAL 20 DAY", "cat": "'Adjustment'", "descr": "'Support fee adjustment'", **_MONEY,
    }, f"""(SELECT ba, CAST(1 + {m.h("ba", "'adj'")} % 20000 AS DECIMAL(18,0)) * CAST('0.01' AS DECIMAL(3,2))
                * CASE WHEN ({m.h("ba", "'adj'")} >> 32) % 3 = 0 THEN -1 ELSE 1 END AS amt
     FROM (SELECT CAST(range AS INTEGER) AS ba FROM range({len(reference().billing_accounts)})))""", "ba")
    # fmt: on
