"""Planning an evaluation: which measures over which windows, in which queries; the data's dates."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ..errors import ConfigError
from ..schema import TABLES
from ._exprs import dtype_of
from ._periods import Period
from .spec import ExternalKpi, Measure


@dataclass
class Needs:
    """Which measures are needed over which windows, grouped into queries."""

    flows: dict  # (table, time) -> {measure name: Measure}
    flow_wids: dict  # (table, time) -> set of wids
    snaps: dict  # (table, Snapshot) -> {name: Measure}
    snap_wids: dict
    cum_maps: dict  # Window -> {wid: cwid}

    def add(self, m: Measure, wids) -> None:
        if not wids:
            return
        key = (m.table, m.snapshot) if m.is_snapshot else (m.table, m.time)
        store, wstore = (self.snaps, self.snap_wids) if m.is_snapshot else (self.flows, self.flow_wids)
        store.setdefault(key, {})[m.name] = m
        wstore.setdefault(key, set()).update(wids)


def stats_items(cat, kpis) -> dict[str, list]:
    """Per fact table, the (time column, filters) pairs whose dates are events."""
    items: dict[str, list] = {}

    def add(table, col, filters=()):
        if col and (col, filters) not in items.setdefault(table, []):
            items[table].append((col, tuple(filters)))

    for n in kpis:
        k = cat.get(n)
        if isinstance(k, ExternalKpi):
            add(k.table, TABLES[k.table].time_column)
            continue
        for mname in k.measure_names:
            m = cat.measure(mname)
            add(m.table, TABLES[m.table].time_column)
            if m.snapshot:
                add(m.table, m.snapshot.start)
                if m.snapshot.end:
                    add(m.table, m.snapshot.end, m.snapshot.end_if)
            else:
                add(m.table, m.time, m.filters)
    return items


def check_measure(m: Measure, kpi: str) -> None:
    if m.column and m.agg in ("min", "max") and dtype_of(m.table, m.column) in ("date", "datetime"):
        raise ConfigError(
            f"KPI {kpi}: measure {m.name} is the {m.agg} of a date ({m.table}.{m.column}); the engine computes "
            "numbers. Use a duration measure instead."
        )


def periods_frame(ps: list[Period], cur, cmp) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "period": [p.start for p in ps],
            "days": [p.days for p in ps],
            "complete": [p.complete for p in ps],
            "cur": cur,
            "cmp": cmp,
        },
        schema={"period": pl.Date, "days": pl.Int64, "complete": pl.Boolean, "cur": pl.Int64, "cmp": pl.Int64},
    )
