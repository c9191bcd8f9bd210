"""SLA settings (``parameters/sla.yaml``) and the SLA outcome of each case (see :mod:`crmlib.service`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml

from .. import config, schema
from ..calendars import MODES, US_HOUR, Calendar
from ..errors import ConfigError, suggest
from ._common import DONE


@dataclass(frozen=True)
class Policy:
    """Targets of one SLA policy, in hours of the SLA clock (None: no such target)."""

    name: str
    first_response: float | None = None
    resolution: float | None = None


@dataclass(frozen=True)
class Sla:
    """SLA settings (``parameters/sla.yaml``): the clock, the pause statuses, the policies per priority,
    the policy of cases without one (``default``) and the about-to-breach threshold."""

    hours: str = "business"
    pause: tuple[str, ...] = ("pending",)
    warn_within_hours: float = 2.0
    policies: Mapping[str, Policy] = field(default_factory=lambda: {
        "urgent": Policy("urgent", 1, 8), "high": Policy("high", 4, 24),
        "normal": Policy("normal", 8, 40), "low": Policy("low", 24, 80)})
    default: Policy | None = None
    source: str = field(default="(built-in default)", compare=False)

    def frame(self) -> pl.DataFrame:
        """priority, sla_policy, first_response_target_us, resolution_target_us (one row per policy)."""
        rows = [(p, pol.name, pol.first_response, pol.resolution) for p, pol in self.policies.items()]
        return pl.DataFrame(rows, schema={"priority": pl.String, "sla_policy": pl.String, "fr": pl.Float64,
                                          "res": pl.Float64}, orient="row").select(
            "priority", "sla_policy", *[(pl.col(c) * US_HOUR).round().cast(pl.Int64).alias(n)
                                        for c, n in (("fr", "fr_target_us"), ("res", "res_target_us"))])


SLA_KEYS = ("hours", "pause", "warn_within_hours", "policies", "default", "description")
POLICY_KEYS = ("first_response", "resolution")


def load_sla(path: str | Path | Sla | None = None) -> Sla:
    """SLA settings from ``path`` (default ``parameters/sla.yaml``; built-in targets when it is missing).

    Raises :class:`ConfigError` naming the file and listing every problem.
    """
    if isinstance(path, Sla):
        return path
    p = Path(path).expanduser() if path is not None else config.home() / "parameters" / "sla.yaml"
    if not p.exists():
        if path is None:
            return Sla()
        raise ConfigError(f"SLA file {p} does not exist. Give the path of an SLA YAML file (see parameters/sla.yaml).")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"SLA file {p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return sla_from_dict(data, str(p))


def sla_from_dict(data, source: str = "(dict)") -> Sla:
    """Build SLA settings from the mapping of an SLA file (every problem reported at once)."""
    if not isinstance(data, dict):
        raise ConfigError(f"SLA {source}: the file must be a mapping with keys {', '.join(SLA_KEYS)}.")
    problems: list[str] = []
    for key in data:
        if key not in SLA_KEYS:
            problems.append(f"unknown key {key!r}.{suggest(str(key), SLA_KEYS)} Keys: {', '.join(SLA_KEYS)}")
    hours = data.get("hours", "business")
    if hours not in MODES:
        problems.append(f"hours must be business or calendar, not {hours!r}")
    statuses = schema.ENUMS["case_status"]
    pause = data.get("pause", ["pending"]) or []
    if not isinstance(pause, list):
        problems.append(f"pause must be a list of statuses such as [pending], not {pause!r}")
        pause = []
    for s in pause:
        if s not in statuses or s in DONE:
            problems.append(f"pause: {s!r} is not an open status.{suggest(str(s), statuses)} Use some of "
                            f"{', '.join(x for x in statuses if x not in DONE)}")
    warn = data.get("warn_within_hours", 2.0)
    if isinstance(warn, bool) or not isinstance(warn, int | float) or warn < 0:
        problems.append(f"warn_within_hours must be a number of hours >= 0, not {warn!r}")

    def policy(name: str, spec, where: str) -> Policy | None:
        if not isinstance(spec, dict):
            problems.append(f"{where} must be a mapping such as {{first_response: 4, resolution: 24}}, not {spec!r}")
            return None
        for k in spec:
            if k not in POLICY_KEYS:
                problems.append(f"{where}: unknown key {k!r}.{suggest(str(k), POLICY_KEYS)} Keys: "
                                f"{', '.join(POLICY_KEYS)}")
        values = {}
        for k in POLICY_KEYS:
            v = spec.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v <= 0):
                problems.append(f"{where}.{k} must be a number of hours > 0, not {v!r}")
                v = None
            values[k] = float(v) if v is not None else None
        if values["first_response"] is None and values["resolution"] is None:
            problems.append(f"{where} has no target: give first_response and/or resolution (hours)")
        return Policy(name, **values)

    policies: dict[str, Policy] = {}
    raw = data.get("policies")
    priorities = schema.ENUMS["priority"]
    if not isinstance(raw, dict) or not raw:
        problems.append(f"policies must map priorities ({', '.join(priorities)}) to targets")
    else:
        for prio, spec in raw.items():
            if prio not in priorities:
                problems.append(f"policies: {prio!r} is not a priority.{suggest(str(prio), priorities)} "
                                f"Priorities: {', '.join(priorities)}")
                continue
            pol = policy(str(prio), spec, f"policies.{prio}")
            if pol is not None:
                policies[prio] = pol
    default = policy("default", data["default"], "default") if data.get("default") is not None else None
    if problems:
        raise ConfigError(f"SLA {source}: " + "; ".join(problems) + ".")
    return Sla(hours=hours, pause=tuple(pause), warn_within_hours=float(warn), policies=policies, default=default,
               source=source)


def outcomes(f: pl.DataFrame, s: pl.DataFrame, T: dt.datetime, cal: Calendar, sla: Sla) -> pl.DataFrame:
    """Add each case's SLA outcome to the case facts ``f`` (with its targets ``fr_target_us`` and
    ``res_target_us``), given ``s``: per case the resolution clock ``active_us`` and the clock value at which
    it passed its target (``res_breach_clock``), in the SLA's clock, as of ``T``."""
    mode = sla.hours
    c_T = cal.clock_of(T, mode)
    f = f.join(s.select("case_id", "active_us", "res_breach_clock"), on="case_id", how="left")
    created = cal.clock(pl.col("created_at"), mode)
    fr_stop = pl.min_horizontal("first_response_at", "first_solved_at")
    fr_elapsed = pl.coalesce(cal.clock(fr_stop, mode), pl.lit(c_T)) - created
    fr_t, res_t = pl.col("fr_target_us"), pl.col("res_target_us")
    fr_passed = created + fr_t
    f = f.with_columns(
        fr_elapsed.alias("_fr_el"),
        pl.when(fr_t.is_null()).then(None)
        .when(fr_elapsed > fr_t).then(pl.lit("breached"))
        .when(fr_stop.is_not_null()).then(pl.lit("met")).otherwise(pl.lit("pending")).alias("first_response_sla"),
        pl.when(res_t.is_null()).then(None)
        .when(pl.col("res_breach_clock").is_not_null()).then(pl.lit("breached"))
        .when(~pl.col("is_open")).then(pl.lit("met")).otherwise(pl.lit("pending")).alias("resolution_sla"),
    )
    running = ~pl.col("status").is_in(list(sla.pause))  # the resolution clock runs now
    f = f.with_columns(
        pl.when(pl.col("first_response_sla") == "met").then(fr_stop)
        .when(pl.col("first_response_sla") == "breached").then(cal.unclock(fr_passed, mode))
        .alias("first_response_sla_at"),
        pl.when(pl.col("first_response_sla") == "pending").then(cal.unclock(fr_passed, mode))
        .alias("first_response_due_at"),
        pl.when(pl.col("resolution_sla") == "met").then(pl.col("solved_at"))
        .when(pl.col("resolution_sla") == "breached").then(cal.unclock(pl.col("res_breach_clock"), mode))
        .alias("resolution_sla_at"),
        pl.when((pl.col("resolution_sla") == "pending") & running)
        .then(cal.unclock(pl.lit(c_T) + res_t - pl.col("active_us"), mode)).alias("resolution_due_at"),
        (fr_t / US_HOUR).alias("first_response_target_hours"),
        (res_t / US_HOUR).alias("resolution_target_hours"),
        (pl.col("_fr_el") / US_HOUR).alias("first_response_elapsed_hours"),
        (pl.col("active_us") / US_HOUR).alias("resolution_elapsed_hours"),
    )
    f = f.with_columns(
        pl.when(pl.col("first_response_sla") == "pending")
        .then(pl.col("first_response_target_hours") - pl.col("first_response_elapsed_hours"))
        .alias("first_response_remaining_hours"),
        pl.when(pl.col("resolution_sla") == "pending")
        .then(pl.col("resolution_target_hours") - pl.col("resolution_elapsed_hours"))
        .alias("resolution_remaining_hours"),
    )
    outcomes = [pl.col("first_response_sla"), pl.col("resolution_sla")]
    any_breach = pl.any_horizontal(o == "breached" for o in outcomes).fill_null(False)
    all_met = pl.all_horizontal((o == "met") | o.is_null() for o in outcomes) & pl.any_horizontal(
        o.is_not_null() for o in outcomes)
    breach_at = pl.min_horizontal(
        pl.when(pl.col(f"{m}_sla") == "breached").then(pl.col(f"{m}_sla_at")) for m in ("first_response", "resolution"))
    f = f.with_columns(
        pl.when(any_breach).then(pl.lit("breached")).when(all_met).then(pl.lit("met"))
        .when(pl.any_horizontal(o.is_not_null() for o in outcomes)).then(pl.lit("pending")).alias("sla"),
    ).with_columns(
        pl.when(pl.col("sla") == "breached").then(breach_at)
        .when(pl.col("sla") == "met").then(pl.max_horizontal("first_response_sla_at", "resolution_sla_at"))
        .alias("sla_at"),
        pl.min_horizontal("first_response_remaining_hours", "resolution_remaining_hours").alias("remaining_hours"),
    )
    return f.drop("active_us", "res_breach_clock", "_fr_el", "fr_target_us", "res_target_us")
