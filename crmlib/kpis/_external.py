"""External KPIs: computed by Python code the catalog names (``provider: "module:function"``).

The function is looked up before any query runs, and called once per evaluation as
``provider(crm, by=[…], grain=…, period=(start, end), filters={…})`` over the periods and their
comparison windows up to the as-of date. It returns a tidy frame ``period, <dimensions…>, value`` (polars,
lazy or eager, or anything narwhals reads), one row per grain period start and group.
"""

from __future__ import annotations

import importlib

import polars as pl

from ..errors import ConfigError, CrmlibError
from ._periods import ALL, Windows, trunc
from .spec import ExternalKpi


def provider(k: ExternalKpi):
    """The function computing an external KPI (checked before any query runs)."""
    module_name, _, func_name = k.provider.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise CrmlibError(f"KPI {k.name} is computed by {module_name}, which is not available yet.") from None
        raise
    func = getattr(module, func_name, None)
    if func is None:
        raise CrmlibError(f"KPI {k.name} is computed by {k.provider}, which is not available yet "
                          f"({module_name} has no function {func_name}).")
    return func


def external(crm, func, k: ExternalKpi, req, win: Windows, base, keys) -> pl.DataFrame:
    empty = pl.DataFrame(schema={"wid": pl.Int64, **{kk: pl.String for kk in keys}, "value": pl.Float64})
    if req.grain == ALL:
        raise ConfigError(f"KPI {k.name} is computed by {k.provider} per grain period; give a grain.")
    if not base:
        return empty
    bounds = win.bounds(base)
    lo, hi = min(b[1] for b in bounds), max(b[2] for b in bounds)
    got = func(crm, by=list(req.by), grain=req.grain, period=(lo, hi), filters=dict(req.filters))
    if isinstance(got, pl.LazyFrame):
        got = got.collect()
    if not isinstance(got, pl.DataFrame):
        import narwhals as nw

        got = nw.from_native(got).lazy().collect(backend="polars").to_native()
    need = ["period", *req.by, "value"]
    lacking = [c for c in need if c not in got.columns]
    if lacking:
        raise CrmlibError(f"{k.provider} returned no column {', '.join(lacking)} for KPI {k.name}; "
                          f"it must return {', '.join(need)}.")
    got = got.select(pl.col("period").cast(pl.Date), *[pl.col(b).cast(pl.String).alias(kk)
                     for b, kk in zip(req.by, keys, strict=True)], pl.col("value").cast(pl.Float64))
    wmap = pl.DataFrame({"wid": [b[0] for b in bounds], "period": [trunc(b[1], req.grain) for b in bounds]},
                        schema={"wid": pl.Int64, "period": pl.Date})
    return wmap.join(got, on="period", how="inner").select("wid", *keys, "value")
