"""The demo's reference data rendered into DuckDB: constant lists of structs read through macros ``d_*()``.

This module owns the bridge from the typed records of ``server.store.demo_reference`` to SQL: typed
literals (``lit``), struct lists, the EUR price list, and ``macros()``, the statements that define
every ``d_*()`` lookup the row SQL (``server.store.demo_sql``) indexes with hashes. Decimals are
rendered from ``Decimal`` text, so a price reaches DuckDB exactly as written in the package data.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from server.store.demo_load import reference
from server.store.demo_reference import Reference

EUR_PER_USD = Decimal("0.92")  # the EUR price list is the USD one at this rate, rounded to 8 places
PRICE = "DECIMAL(18,8)"
FACTOR = "DECIMAL(4,2)"


def lit(value: Any, sql_type: str) -> str:
    """A typed SQL literal (reference data and generated numbers only: no user input reaches this).

    A list or tuple becomes a typed list of literals.
    """
    if value is None:
        return f"CAST(NULL AS {sql_type})"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, list | tuple):
        inner = sql_type.removesuffix("[]")
        return f"CAST([{', '.join(lit(v, inner) for v in value)}] AS {sql_type})"
    if isinstance(value, int):
        return f"CAST({value} AS {sql_type})"
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}'"
    return f"CAST('{str(value).replace(chr(39), chr(39) * 2)}' AS {sql_type})"


def struct_list(fields: str, rows: list[tuple[Any, ...]]) -> str:
    """A constant list of structs; ``fields`` is "name TYPE, name TYPE, ..." (no space inside a type)."""
    spec = [tuple(f.split()) for f in fields.split(", ")]
    items = ("{" + ", ".join(f"'{n}': {lit(v, t)}" for (n, t), v in zip(spec, row, strict=True)) + "}" for row in rows)
    return "[" + ",\n ".join(items) + "]"


def eur(price: Decimal) -> Decimal:
    return (price * EUR_PER_USD).quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN)


def macros() -> list[str]:
    """Statements defining the reference data as constant lists, read through macros ``d_*()``."""
    ref = reference()
    lists = {**_account_lists(ref), **_catalog_lists(ref), **_commitment_lists(ref), **_allocation_lists(ref)}
    lists |= {
        "d_taxpairs": struct_list("ba INTEGER, si INTEGER", ref.tax_pairs),
        "d_wsvc": lit([i for i, s in enumerate(ref.services) for _ in range(s.weight)], "INTEGER[]"),
        "d_elig": lit(ref.eligibility(), "INTEGER[]"),
        "d_teams": lit(ref.teams, "VARCHAR[]"),
        "d_ccs": lit(ref.cost_centers, "VARCHAR[]"),
        "d_apps": lit(ref.apps, "VARCHAR[]"),
    }
    # Held in variables: a macro would re-bind its literal list at every use, which costs more than
    # generating thousands of rows.
    statements = [
        s
        for name, body in lists.items()
        for s in (f"SET VARIABLE {name} = {body}", f"CREATE OR REPLACE MACRO {name}() AS getvariable('{name}')")
    ]
    # Exact decimal text for JSON numbers, without trailing zeros (0.125000 -> 0.125, 2.000 -> 2).
    statements.append(
        "CREATE OR REPLACE MACRO dectxt(x) AS CASE WHEN contains(CAST(x AS VARCHAR), '.') "
        "THEN rtrim(rtrim(CAST(x AS VARCHAR), '0'), '.') ELSE CAST(x AS VARCHAR) END"
    )
    return statements


def _account_lists(ref: Reference) -> dict[str, str]:
    """``d_prov``, ``d_ba``, ``d_sa`` and ``d_rg``: providers, billing accounts, sub accounts, regions."""
    svc, rgi = ref.service_index, ref.region_index
    providers = [
        (p.name, [b for b, ba in enumerate(ref.billing_accounts) if ba.provider == i], p.tag_template)
        for i, p in enumerate(ref.providers)
    ]
    accounts = [
        (b.id, b.name, b.type, b.currency, b.provider, b.contracted_factor, b.tax_rate, b.tax_name,
         b.contract_commitment, [svc[s] for s in b.credit_services], svc[b.support_service],
         *ref.account_sub_accounts(i))
        for i, b in enumerate(ref.billing_accounts)
    ]  # fmt: skip
    subs = [
        (s.id, s.name, s.type, s.billing_account, s.environment, s.resource_id_part, [rgi[r] for r in s.regions])
        for s in ref.sub_accounts
    ]
    return {
        "d_prov": struct_list("name VARCHAR, bas INTEGER[], tags VARCHAR", providers),
        "d_ba": struct_list(
            f"id VARCHAR, name VARCHAR, type VARCHAR, cur VARCHAR, p INTEGER, cf {FACTOR}, tax DECIMAL(6,4), "
            "tax_name VARCHAR, cc INTEGER, credit_sis INTEGER[], adj_si INTEGER, sa_lo INTEGER, sa_n INTEGER",
            accounts,
        ),
        "d_sa": struct_list(
            "id VARCHAR, name VARCHAR, type VARCHAR, ba INTEGER, env VARCHAR, rid VARCHAR, rgs INTEGER[]", subs
        ),
        "d_rg": struct_list("id VARCHAR, name VARCHAR, azs VARCHAR[]", [(r.id, r.name, r.zones) for r in ref.regions]),
    }


def _catalog_lists(ref: Reference) -> dict[str, str]:
    """``d_svc`` and ``d_sku``: services and SKUs with their USD and EUR list prices."""
    sku_lo = {i: sum(len(s.skus) for s in ref.services[:i]) for i in range(len(ref.services))}
    services = [
        (s.name, s.category, s.subcategory, s.provider, s.resource_type, s.resources, s.location, s.daily,
         sku_lo[i], len(s.skus), s.per_resource, s.spot, s.id_template, s.name_template)
        for i, s in enumerate(ref.services)
    ]  # fmt: skip
    skus = [
        (k.id, k.desc, k.meter, k.price_usd, k.price_usd if k.meter == "Commitment" else eur(k.price_usd),
         k.unit, k.consumed_unit, Decimal(k.consumed_factor), k.span, k.step, k.partial_pct, k.details)
        for k in ref.skus
    ]  # fmt: skip
    return {
        "d_svc": struct_list(
            "name VARCHAR, cat VARCHAR, sub VARCHAR, p INTEGER, rtype VARCHAR, n_res INTEGER, loc INTEGER, "
            "daily BOOLEAN, sku_lo INTEGER, sku_n INTEGER, per_res BOOLEAN, spot BOOLEAN, rid VARCHAR, rname VARCHAR",
            services,
        ),
        "d_sku": struct_list(
            f"id VARCHAR, desc VARCHAR, meter VARCHAR, p_usd {PRICE}, p_eur {PRICE}, punit VARCHAR, cunit VARCHAR, "
            "cfac DECIMAL(18,0), span INTEGER, step DECIMAL(18,4), part INTEGER, details VARCHAR",
            skus,
        ),
    }


def _commitment_lists(ref: Reference) -> dict[str, str]:
    """``d_commit`` (commitment discounts) and ``d_cc`` (every Contract Commitment row's contract and id)."""
    commitments = [
        (c.id, c.name, c.category, c.type, c.resource_type, c.resource_name, c.billing_account, c.sub_account,
         ref.service_index[c.service], ref.region_index.get(c.region or ""), ref.sku_index[f"COMMIT-{c.resource_name}"],
         ref.sku_index.get(c.instance_sku or ""), Decimal(c.rate or 0), c.units, Decimal(c.spend_factor or 0),
         Decimal(c.hourly or 0), c.cover_pct, "Hours" if c.category == "Usage" else ref.currency(c))
        for c in ref.commitments
    ]  # fmt: skip
    contracts = [(c.contract_id, c.id) for c in ref.commitments] + [(n.contract_id, n.id) for n in ref.negotiated]
    return {
        "d_commit": struct_list(
            "id VARCHAR, name VARCHAR, cat VARCHAR, type VARCHAR, rtype VARCHAR, rname VARCHAR, ba INTEGER, "
            f"sa INTEGER, si INTEGER, rg INTEGER, csku INTEGER, isku INTEGER, rate {PRICE}, units INTEGER, "
            f"spf {FACTOR}, hourly DECIMAL(18,2), cover INTEGER, unit VARCHAR",
            commitments,
        ),
        "d_cc": struct_list("contract VARCHAR, id VARCHAR", contracts),
    }


def _allocation_lists(ref: Reference) -> dict[str, str]:
    """``d_node`` (every Kubernetes node of every cluster) and ``d_ns`` (the namespaces its cost splits over)."""
    return {
        "d_node": struct_list(
            "cluster VARCHAR, ba INTEGER, sa INTEGER, si INTEGER, sku INTEGER, rg INTEGER, az VARCHAR, vcpu INTEGER, "
            "rid VARCHAR, rname VARCHAR, tags VARCHAR",
            _nodes(ref),
        ),
        "d_ns": struct_list("name VARCHAR, team VARCHAR", [(n.name, n.team) for n in ref.namespaces]),
    }


def _nodes(ref: Reference) -> list[tuple[Any, ...]]:
    nodes = []
    for cl in ref.clusters:
        tags = ref.providers[ref.billing_accounts[cl.billing_account].provider].tag_template
        for old, new in (("{env}", "prod"), ("{cc}", "cc-1000"), ("{team}", "team-platform"), ("{app}", "k8s")):
            tags = tags.replace(old, new)
        for n in range(ref.nodes_per_cluster):
            ids = (cl.node_id.replace("{n}", f"{n:04x}"), cl.node_name.replace("{n}", f"{n:04x}"))
            nodes.append(
                (cl.id, cl.billing_account, cl.sub_account, ref.service_index[cl.service],
                 ref.sku_index[cl.instance_sku], ref.region_index[cl.region], cl.zone, cl.vcpus, *ids, tags)
            )  # fmt: skip
    return nodes
