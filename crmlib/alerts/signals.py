"""Opportunity signals, each with its evidence: where to act before a competitor does.

* **Rising activity / order frequency** (:func:`rising`): accounts whose activities (or completed orders)
  in the last ``window_days`` up to the as-of day are at least ``ratio`` times their usual rate, the
  mean count per window over the four windows before, and at least ``min_recent``. A new account with
  no history counts as rising once it reaches ``min_recent``. (The customers notebook has a model-based
  view of rising buyers, :func:`crmlib.customers.rising_accounts`, using BG/NBD; this one needs no fit.)
* **Cross-sell** (:func:`cross_sell`): the top ``top_share`` of customers by completed order revenue of
  the last 365 days (in the base currency, :mod:`crmlib.money`; orders as :mod:`crmlib.customers` counts
  them) who hold at most ``max_products`` products: distinct products of their subscriptions active on
  the as-of day and of those orders (the evidence shows what the top tier holds: its median number of products).
* **Campaigns converting above their peers** (:func:`campaign_conversion`): leads created in the
  ``lookback_days`` up to ``maturity_days`` before the as-of day (so every lead had the same time to
  convert); conversion = converted to an opportunity within ``maturity_days`` and by the as-of day. A
  campaign is flagged when it has ``min_leads`` leads, its rate is at least ``min_lift`` times the
  pooled rate of all other campaigns' leads, and ``z = (p - p0) / sqrt(p0 (1 - p0) / n) >= z`` (the
  binomial test of its n leads against the peers' rate p0).

Each function returns a frame sorted by strength, at most ``limit`` rows; :func:`signal_alerts` turns
them into alert records (kind ``signal``).
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl

from ..customers.data import kept_orders
from ..money import convert

DAY = dt.timedelta(days=1)


def _end(as_of: dt.date) -> dt.datetime:
    return dt.datetime.combine(as_of + DAY, dt.time())


def rising(
    events: pl.LazyFrame | pl.DataFrame,
    accounts: pl.LazyFrame | pl.DataFrame,
    as_of: dt.date,
    time: str = "occurred_at",
    window_days: int = 90,
    ratio: float = 2.0,
    min_recent: int = 10,
    limit: int = 20,
) -> pl.DataFrame:
    """Accounts whose event count in the last window is ``ratio`` × their usual (see the module docstring).

    Returns ``account_id, name, owner_id, segment, recent, usual, ratio`` (``usual`` = mean per window
    over the 4 windows before; ``ratio`` null when ``usual`` is 0).
    """
    end = _end(as_of)
    w = dt.timedelta(days=int(window_days))
    lf = events.lazy().filter(
        pl.col("account_id").is_not_null() & (pl.col(time) < end) & (pl.col(time) >= end - 5 * w)
    )
    counts = lf.group_by("account_id").agg(
        (pl.col(time) >= end - w).sum().cast(pl.Int64).alias("recent"),
        ((pl.col(time) < end - w).sum() / 4.0).alias("usual"),
    )
    flagged = counts.filter(
        (pl.col("recent") >= min_recent) & (pl.col("recent") >= ratio * pl.col("usual"))
    ).with_columns(
        pl.when(pl.col("usual") > 0).then(pl.col("recent") / pl.col("usual")).otherwise(None).alias("ratio"),
    )
    acc = accounts.lazy().select("account_id", "name", "owner_id", "segment")
    return (
        flagged.join(acc, on="account_id", how="left")
        .sort([pl.col("recent") - pl.col("usual"), "account_id"], descending=[True, False])
        .select("account_id", "name", "owner_id", "segment", "recent", "usual", "ratio")
        .head(int(limit))
        .collect()
    )


def cross_sell(
    orders: pl.LazyFrame | pl.DataFrame,
    subscriptions: pl.LazyFrame | pl.DataFrame,
    accounts: pl.LazyFrame | pl.DataFrame,
    fx_rates,
    as_of: dt.date,
    top_share: float = 0.2,
    max_products: int = 1,
    limit: int = 20,
) -> pl.DataFrame:
    """High-value customers holding few products (see the module docstring).

    Returns ``account_id, name, owner_id, segment, revenue_12m, products, tier_median_products,
    revenue_rank`` sorted by revenue.
    """
    start = _end(as_of) - dt.timedelta(days=365)
    recent = (
        kept_orders(orders.lazy(), as_of)
        .filter(pl.col("ordered_at") >= start)
        .with_columns(pl.col("ordered_at").dt.date().alias("_day"))
        .collect()
    )
    if recent.height == 0:
        return _empty_cross_sell()
    fx = fx_rates.collect() if isinstance(fx_rates, pl.LazyFrame) else fx_rates
    conv = convert(recent, fx, day="_day", table="orders") if "currency" in recent.columns else recent
    amount = "amount_base" if "amount_base" in conv.columns else "amount"
    revenue = (
        conv.group_by("account_id")
        .agg(pl.col(amount).sum().alias("revenue_12m"))
        .sort(["revenue_12m", "account_id"], descending=[True, False])
        .with_row_index("revenue_rank", offset=1)
    )
    n_top = max(1, math.ceil(top_share * revenue.height))
    top = revenue.head(n_top)
    subs = (
        subscriptions.lazy()
        .filter(
            (pl.col("start_date") <= as_of) & (pl.col("end_date").is_null() | (pl.col("end_date") > as_of))
        )
        .select("account_id", "product_id")
        .collect()
    )
    held = pl.concat([subs, recent.select("account_id", "product_id")]).filter(
        pl.col("product_id").is_not_null()
    )
    active = held.group_by("account_id").agg(pl.col("product_id").n_unique().alias("products"))
    top = top.join(active, on="account_id", how="left").with_columns(
        pl.col("products").fill_null(0).cast(pl.Int64)
    )
    median = float(top["products"].median())
    flagged = top.filter(pl.col("products") <= max_products)
    acc = accounts.lazy().select("account_id", "name", "owner_id", "segment").collect()
    return (
        flagged.join(acc, on="account_id", how="left")
        .with_columns(
            pl.lit(median).alias("tier_median_products"),
            pl.col("revenue_rank").cast(pl.Int64),
        )
        .select(
            "account_id",
            "name",
            "owner_id",
            "segment",
            "revenue_12m",
            "products",
            "tier_median_products",
            "revenue_rank",
        )
        .sort("revenue_rank")
        .head(int(limit))
    )


def _empty_cross_sell() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "account_id": pl.String,
            "name": pl.String,
            "owner_id": pl.String,
            "segment": pl.String,
            "revenue_12m": pl.Float64,
            "products": pl.Int64,
            "tier_median_products": pl.Float64,
            "revenue_rank": pl.Int64,
        }
    )


def campaign_conversion(
    leads: pl.LazyFrame | pl.DataFrame,
    campaigns: pl.LazyFrame | pl.DataFrame,
    as_of: dt.date,
    lookback_days: int = 365,
    maturity_days: int = 90,
    min_leads: int = 30,
    z: float = 3.0,
    min_lift: float = 1.5,
    limit: int = 20,
) -> pl.DataFrame:
    """Campaigns whose leads convert well above their peers' (see the module docstring).

    Returns ``campaign_id, name, channel, leads, converted, rate, peer_rate, lift, z`` sorted by z.
    """
    hi = _end(as_of) - dt.timedelta(days=int(maturity_days))
    lo = hi - dt.timedelta(days=int(lookback_days))
    conv = (
        pl.col("converted_at").is_not_null()
        & (pl.col("converted_at") < _end(as_of))
        & (pl.col("converted_at") - pl.col("created_at") <= dt.timedelta(days=int(maturity_days)))
    )
    per = (
        leads.lazy()
        .filter(
            pl.col("campaign_id").is_not_null() & (pl.col("created_at") >= lo) & (pl.col("created_at") < hi)
        )
        .group_by("campaign_id")
        .agg(pl.len().cast(pl.Int64).alias("leads"), conv.sum().cast(pl.Int64).alias("converted"))
        .collect()
    )
    total_n, total_c = int(per["leads"].sum() or 0), int(per["converted"].sum() or 0)
    scored = per.with_columns(
        (pl.col("converted") / pl.col("leads")).alias("rate"),
        ((total_c - pl.col("converted")) / (total_n - pl.col("leads"))).alias("peer_rate"),
    ).with_columns(
        (pl.col("rate") / pl.col("peer_rate")).alias("lift"),
        (
            (pl.col("rate") - pl.col("peer_rate"))
            / (pl.col("peer_rate") * (1 - pl.col("peer_rate")) / pl.col("leads")).sqrt()
        ).alias("z"),
    )
    flagged = scored.filter(
        (pl.col("leads") >= min_leads)
        & (pl.col("z") >= z)
        & (pl.col("lift") >= min_lift)
        & pl.col("z").is_finite()
    )
    camp = campaigns.lazy().select("campaign_id", "name", "channel").collect()
    return (
        flagged.join(camp, on="campaign_id", how="left")
        .select(
            "campaign_id",
            "name",
            "channel",
            "leads",
            "converted",
            "rate",
            "peer_rate",
            "lift",
            "z",
        )
        .sort(["z", "campaign_id"], descending=[True, False])
        .head(int(limit))
    )


def compute(crm, as_of: dt.date, settings) -> dict[str, pl.DataFrame]:
    """Every configured signal on the data (``settings``: :attr:`RuleSet.signals`), by kind."""
    out: dict[str, pl.DataFrame] = {}
    s = settings
    if "rising_activity" in s:
        c = s["rising_activity"]
        out["rising_activity"] = rising(
            crm.table("activities"),
            crm.table("accounts"),
            as_of,
            "occurred_at",
            int(c["window_days"]),
            c["ratio"],
            int(c["min_recent"]),
            int(c["limit"]),
        )
    if "rising_orders" in s:
        c = s["rising_orders"]
        out["rising_orders"] = rising(
            kept_orders(crm.table("orders"), as_of),
            crm.table("accounts"),
            as_of,
            "ordered_at",
            int(c["window_days"]),
            c["ratio"],
            int(c["min_recent"]),
            int(c["limit"]),
        )
    if "cross_sell" in s:
        c = s["cross_sell"]
        out["cross_sell"] = cross_sell(
            crm.table("orders"),
            crm.table("subscriptions"),
            crm.table("accounts"),
            crm.table("fx_rates"),
            as_of,
            c["top_share"],
            int(c["max_products"]),
            int(c["limit"]),
        )
    if "campaign_conversion" in s:
        c = s["campaign_conversion"]
        out["campaign_conversion"] = campaign_conversion(
            crm.table("leads"),
            crm.table("campaigns"),
            as_of,
            int(c["lookback_days"]),
            int(c["maturity_days"]),
            int(c["min_leads"]),
            c["z"],
            c["min_lift"],
            int(c["limit"]),
        )
    return out


SIGNAL_TEXT = {
    "rising_activity": {
        "en": "{name}: {recent} activities in the last {days} days, {ratio} its usual {usual}.",
        "zh": "{name}：近 {days} 天有 {recent} 次活动，是以往水平 {usual} 的 {ratio}。",
    },
    "rising_orders": {
        "en": "{name}: {recent} orders in the last {days} days, {ratio} its usual {usual}.",
        "zh": "{name}：近 {days} 天下单 {recent} 次，是以往水平 {usual} 的 {ratio}。",
    },
    "cross_sell": {
        "en": "{name}: order revenue {revenue} in 12 months (rank {rank}) but {products} product(s); "
        "its peers hold {median}.",
        "zh": "{name}：近 12 个月订单收入 {revenue}（排名第 {rank}），但只持有 {products} 种产品；"
        "同类客户持有 {median} 种。",
    },
    "campaign_conversion": {
        "en": "Campaign {name} ({channel}): {rate} of {leads} leads converted, {lift} the "
        "peers' {peer} (z = {z}).",
        "zh": "活动 {name}（{channel}）：{leads} 条线索转化率 {rate}，是同类 {peer} 的 {lift}（z = {z}）。",
    },
}
SIGNAL_KPI = {
    "rising_activity": "calls",
    "rising_orders": "orders",
    "cross_sell": "order_revenue",
    "campaign_conversion": "lead_to_opportunity",
}


def signal_alerts(frames: dict[str, pl.DataFrame], settings, severity: str, as_of: dt.date) -> list[dict]:
    """Alert records (kind ``signal``) for the rows of :func:`compute`."""
    from ..cards import format_value

    out = []
    for kind, frame in frames.items():
        c = settings[kind]
        for row in frame.iter_rows(named=True):
            msgs = {}
            for lang in ("en", "zh"):
                if kind.startswith("rising"):
                    ratio = "–" if row["ratio"] is None else f"{row['ratio']:.1f}×"
                    fields = {
                        "name": row["name"] or row["account_id"],
                        "recent": row["recent"],
                        "days": int(c["window_days"]),
                        "ratio": ratio if row["ratio"] else ("new" if lang == "en" else "新增"),
                        "usual": f"{row['usual']:.1f}",
                    }
                elif kind == "cross_sell":
                    fields = {
                        "name": row["name"] or row["account_id"],
                        "rank": row["revenue_rank"],
                        "revenue": format_value(row["revenue_12m"], "currency", 0, lang),
                        "products": row["products"],
                        "median": f"{row['tier_median_products']:g}",
                    }
                else:
                    fields = {
                        "name": row["name"] or row["campaign_id"],
                        "channel": row["channel"],
                        "rate": f"{row['rate']:.1%}",
                        "leads": row["leads"],
                        "lift": f"{row['lift']:.1f}×",
                        "peer": f"{row['peer_rate']:.1%}",
                        "z": f"{row['z']:.1f}",
                    }
                msgs[lang] = SIGNAL_TEXT[kind][lang].format_map(fields)
            subject = row.get("account_id") or row.get("campaign_id")
            scope_key = "account" if "account_id" in row else "campaign"
            value = {
                "rising_activity": "recent",
                "rising_orders": "recent",
                "cross_sell": "revenue_12m",
                "campaign_conversion": "rate",
            }[kind]
            expected = {
                "rising_activity": "usual",
                "rising_orders": "usual",
                "cross_sell": None,
                "campaign_conversion": "peer_rate",
            }[kind]
            out.append(
                {
                    "key": f"signal:{kind}:{scope_key}={subject}",
                    "kind": "signal",
                    "name": kind,
                    "severity": severity,
                    "kpi": SIGNAL_KPI[kind],
                    "scope": f"{scope_key}={subject}",
                    "scope_values": {scope_key: subject},
                    "period": as_of.isoformat(),
                    "value": _f(row[value]),
                    "threshold": None,
                    "expected": _f(row[expected]) if expected else None,
                    "lower": None,
                    "upper": None,
                    "score": _f(row.get("z")),
                    "target": None,
                    "change": None,
                    "since": as_of.isoformat(),
                    "owner": row.get("owner_id") or "",
                    "message_en": msgs["en"],
                    "message_zh": msgs["zh"],
                    "evidence": {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()},
                }
            )
    return out


def _f(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)
