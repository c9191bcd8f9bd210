"""From aggregated measures to KPI values: the last step of the engine, on small polars frames.

The queries return, per measure, one small frame ``wid, _d_*, value`` (a value per window and group).
Here KPIs are built from them on a *grid*: every window the request needs × every combination of
dimension values (the domain), so that empty groups get rows:

* a measure that adds up (``sum``, ``count``, ``count_distinct``) is 0 where the group has no rows;
  any other aggregation (mean, median, min, max) is null there;
* ratio = numerator / denominator, null when the denominator is 0;
* derived = the expression over the KPI values, a division by zero giving null;
* cumulative = the measure over the cumulative window that ends where the period's window ends;
* conversion = converted / base entities, null while the cohort's window has not elapsed by the as-of
  date (and when there is no base entity);
* external = the provider's values.

Each KPI also gets a run-rate ``proj`` (see :func:`kpi_kind`): a flow is extrapolated to the whole
period (value / days covered × days of the period), a cumulative KPI adds the extrapolated rest of the
period to its value, a derived KPI applies its expression to the projections of its parts, and every
other KPI (ratios, averages, stocks, conversions) projects as its current value.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from .spec import (
    ConversionKpi,
    CumulativeKpi,
    DerivedKpi,
    ExternalKpi,
    RatioKpi,
    SimpleKpi,
    Window,
)

ADDITIVE_AGGS = ("sum", "count", "count_distinct")


def kpi_kind(catalog, name: str) -> str:
    """How values of a KPI combine over time: ``flow`` (they add up: sums and counts of events),
    ``stock`` (the value at the period's end: snapshots and cumulative KPIs) or ``rate`` (neither:
    ratios, averages, distinct counts, derived KPIs, conversion rates)."""
    k = catalog.get(name)
    if isinstance(k, SimpleKpi):
        m = catalog.measure(k.measure)
        return "stock" if m.is_snapshot else "flow" if m.is_additive else "rate"
    if isinstance(k, CumulativeKpi):
        return "stock"
    if isinstance(k, ConversionKpi):
        return "flow" if k.calculation == "conversions" else "rate"
    if isinstance(k, ExternalKpi):
        return "flow" if k.unit in ("count", "currency") else "rate"
    return "rate"


def tables_of(catalog, name: str) -> tuple[str, ...]:
    """The fact tables whose dimension values make a KPI's groups (``external:<name>`` for external)."""
    k = catalog.get(name)
    if isinstance(k, DerivedKpi):
        return tuple(dict.fromkeys(t for r in k.refs for t in tables_of(catalog, r)))
    if isinstance(k, ExternalKpi):
        return (f"external:{name}",)
    if isinstance(k, ConversionKpi):
        return (catalog.measure(k.base).table,)
    return tuple(dict.fromkeys(catalog.measure(m).table for m in k.measure_names))


def divide(a, b):
    """``a / b`` that is null, never inf, when ``b`` is 0 (for derived expressions)."""
    a = a if isinstance(a, pl.Expr) else pl.lit(float(a))
    b = b if isinstance(b, pl.Expr) else pl.lit(float(b))
    return pl.when(b != 0).then(a / b)


class Assembler:
    """Computes KPI values (and run-rate projections) on grids of ``wid`` × dimension values.

    KPIs with the same groups (the same fact tables) are computed together: one wide frame holds every
    measure they need (joined once per query result), each KPI is a polars expression over it, and a
    derived KPI is the expression of its parts' expressions.
    """

    def __init__(self, catalog, keys: list[str], by, as_of: dt.date) -> None:
        self.catalog, self.keys, self.by, self.as_of = catalog, keys, tuple(by), as_of
        self.passes: list[pl.DataFrame] = []  # wid, _d_*, m__<measure>... (one frame per query)
        self.conversions: dict[str, pl.DataFrame] = {}  # wid, _d_*, base, conv
        self.externals: dict[str, pl.DataFrame] = {}  # wid, _d_*, value
        self.domains: dict[str, pl.DataFrame] = {}  # table -> _d_*
        self.windows = pl.DataFrame(schema={"wid": pl.Int64, "lo": pl.Date, "hi": pl.Date})
        self.factors = pl.DataFrame(schema={"wid": pl.Int64, "_f": pl.Float64})
        self.cum_maps: dict[Window, pl.DataFrame] = {}  # wid -> cwid

    # --- groups -----------------------------------------------------------------------------
    def domain(self, tables: tuple[str, ...]) -> pl.DataFrame | None:
        """Combinations of dimension values found in ``tables`` (None when there is no grouping)."""
        if not self.keys:
            return None
        frames = [self.domains[t].select(self.keys) for t in tables if t in self.domains]
        if not frames:
            return pl.DataFrame(schema={k: pl.String for k in self.keys})
        if len(frames) == 1:  # a domain query's rows are distinct already
            return frames[0]
        return pl.concat(frames, how="vertical_relaxed").unique()

    def rows(self, names: list[str], periods: pl.DataFrame, wids: list[int]) -> pl.DataFrame:
        """One row per KPI × period × group: ``kpi, period, <by…>, value, comparison, delta, delta_pct,
        projection, days, complete``; ``periods`` holds the windows of each period (``cur``, ``cmp``)."""
        groups: dict[tuple[str, ...], list[str]] = {}
        for n in names:
            groups.setdefault(tables_of(self.catalog, n), []).append(n)
        out = []
        compared = periods["cmp"].null_count() < periods.height
        for tables, group in groups.items():
            d = self.domain(tables)
            grid = pl.DataFrame({"wid": wids}, schema={"wid": pl.Int64})
            wide = self.values(group, grid if d is None else grid.join(d, how="cross"))
            base = periods if d is None else periods.join(d, how="cross")
            v = [f"v__{n}" for n in group]
            base = base.join(
                wide.select(pl.col("wid").alias("cur"), *self.keys, *v, *[f"p__{n}" for n in group]),
                on=["cur", *self.keys], how="left", nulls_equal=True,
            )
            if compared:
                base = base.join(
                    wide.select(pl.col("wid").alias("cmp"), *self.keys, *[pl.col(c).alias("c" + c[1:]) for c in v]),
                    on=["cmp", *self.keys], how="left", nulls_equal=True,
                )
            else:  # no comparison asked (a join that finds nothing costs as much as one that does)
                base = base.with_columns(*[pl.lit(None, pl.Float64).alias("c" + c[1:]) for c in v])
            dims = [pl.col(k).alias(b) for k, b in zip(self.keys, self.by, strict=True)]
            out += [
                base.select(pl.lit(n).alias("kpi"), "period", *dims, pl.col(f"v__{n}").alias("value"),
                            pl.col(f"c__{n}").alias("comparison"), pl.col(f"p__{n}").alias("projection"),
                            "days", "complete")
                for n in group
            ]
        frame = pl.concat(out, how="vertical_relaxed")
        delta = pl.col("value") - pl.col("comparison")
        return frame.with_columns(
            delta.alias("delta"),
            pl.when(pl.col("comparison") != 0).then(delta / pl.col("comparison").abs()).alias("delta_pct"),
        )

    # --- values -----------------------------------------------------------------------------
    def values(self, names: list[str], grid: pl.DataFrame) -> pl.DataFrame:
        """``grid`` with ``v__<kpi>`` (value) and ``p__<kpi>`` (projection) of each KPI in ``names``."""
        cat = self.catalog
        closure = list(dict.fromkeys(d for n in names for d in cat.dependencies(n)))
        plain: set[str] = set()
        cum: dict[Window, set[str]] = {}
        for n in closure:
            k = cat.get(n)
            if isinstance(k, SimpleKpi | RatioKpi | CumulativeKpi):
                plain.update(k.measure_names)
            if isinstance(k, CumulativeKpi):
                cum.setdefault(k.window, set()).add(k.measure)
        keys = self.keys
        w = grid.join(self.factors, on="wid", how="left")
        for frame in self.passes:
            cols = [c for c in frame.columns if c.startswith("m__") and c[3:] in plain]
            if cols:
                w = w.join(frame.select("wid", *keys, *cols), on=["wid", *keys], how="left", nulls_equal=True)
        for i, (window, ms) in enumerate(cum.items()):
            cw = f"_cw{i}"
            w = w.join(self.cum_maps[window].rename({"cwid": cw}), on="wid", how="left")
            for frame in self.passes:
                cols = [c for c in frame.columns if c.startswith("m__") and c[3:] in ms]
                if cols:
                    w = w.join(
                        frame.select(pl.col("wid").alias(cw), *keys, *[pl.col(c).alias(f"c{i}{c[1:]}") for c in cols]),
                        on=[cw, *keys], how="left", nulls_equal=True,
                    )
        conv = [n for n in closure if isinstance(cat.get(n), ConversionKpi)]
        if conv:
            w = w.join(self.windows.select("wid", pl.col("hi").alias("_hi")), on="wid", how="left")
        for n in conv:
            if n in self.conversions:
                f = self.conversions[n].select("wid", *keys, pl.col("base").alias(f"b__{n}"),
                                               pl.col("conv").alias(f"k__{n}"))
                w = w.join(f, on=["wid", *keys], how="left", nulls_equal=True)
        for n in closure:
            if n in self.externals:
                f = self.externals[n].select("wid", *keys, pl.col("value").alias(f"e__{n}"))
                w = w.join(f, on=["wid", *keys], how="left", nulls_equal=True)
        # columns of measures that no query computed (nothing observed yet) are empty
        wanted = [f"m__{m}" for m in plain] + [f"c{i}__{m}" for i, ms in enumerate(cum.values()) for m in ms]
        wanted += [f"{p}__{n}" for n in conv for p in ("b", "k")]
        wanted += [f"e__{n}" for n in closure if isinstance(cat.get(n), ExternalKpi)]
        w = w.with_columns(*[pl.lit(None, pl.Float64).alias(c) for c in wanted if c not in w.columns])
        exprs = _Exprs(self, list(cum))
        return w.select("wid", *keys, *[exprs.value(n).cast(pl.Float64).alias(f"v__{n}") for n in names],
                        *[exprs.proj(n).cast(pl.Float64).alias(f"p__{n}") for n in names])


class _Exprs:
    """Each KPI as a polars expression over the wide frame of :meth:`Assembler.values`."""

    def __init__(self, asm: Assembler, windows: list[Window]) -> None:
        self.asm, self.cat, self.windows = asm, asm.catalog, windows
        self.f = pl.col("_f").fill_null(1.0)

    def measure(self, name: str, window: Window | None = None) -> pl.Expr:
        m = self.cat.measure(name)
        c = pl.col(f"m__{name}" if window is None else f"c{self.windows.index(window)}__{name}")
        return c.fill_null(0.0) if m.agg in ADDITIVE_AGGS else c

    def value(self, name: str) -> pl.Expr:
        k = self.cat.get(name)
        if isinstance(k, SimpleKpi):
            return self.measure(k.measure)
        if isinstance(k, RatioKpi):
            d = self.measure(k.denominator)
            return pl.when(d != 0).then(self.measure(k.numerator) / d)
        if isinstance(k, CumulativeKpi):
            return self.measure(k.measure, k.window)
        if isinstance(k, ConversionKpi):
            base, conv = pl.col(f"b__{name}").fill_null(0.0), pl.col(f"k__{name}").fill_null(0.0)
            mature = pl.col("_hi") + pl.duration(days=k.window_days) <= pl.lit(self.asm.as_of)
            return pl.when(mature).then(conv if k.calculation == "conversions" else pl.when(base > 0).then(conv / base))
        if isinstance(k, ExternalKpi):
            return pl.col(f"e__{name}")
        if isinstance(k, DerivedKpi):
            return k.evaluate({r: self.value(r) for r in k.refs}, divide)
        raise TypeError(type(k))  # pragma: no cover - every KPI type is handled above

    def proj(self, name: str) -> pl.Expr:
        k = self.cat.get(name)
        if isinstance(k, SimpleKpi):
            m = self.cat.measure(k.measure)
            return self.value(name) * self.f if (m.is_additive and not m.is_snapshot) else self.value(name)
        if isinstance(k, CumulativeKpi) and self.cat.measure(k.measure).is_additive:
            return self.value(name) + self.measure(k.measure) * (self.f - 1.0)
        if isinstance(k, DerivedKpi):
            return k.evaluate({r: self.proj(r) for r in k.refs}, divide)
        return self.value(name)
