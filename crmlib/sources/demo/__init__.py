"""The seeded demo simulator: a CRM company generated from known processes (a ground truth).

``generate(scale, seed)`` returns every canonical table (:data:`crmlib.schema.TABLE_NAMES`) as polars
frames conforming to the canonical model; ``write_demo(out, scale, seed)`` writes them into a DuckDB
warehouse atomically. Same (scale, seed) -> identical frames; nothing depends on today's date: the
data runs from :data:`DEMO_START` to :data:`DEMO_END`, the "as of" day at whose end open deals and
open cases are observed.

Volumes are linear in ``scale`` (at 1: ~2,000 accounts, ~20,000 leads, ~12,000 opportunities,
~150,000 activities, ~200,000 touchpoints, ~15,000 cases). The organisation (8 sales teams with 50
reps in 3 departments and 4 regions, 4 service teams with 30 agents, marketing), the product
catalog and the 40 campaigns keep their shape at every scale; marketing budgets scale.

Planted truths - the analytics must recover them, the tests check that they do. Each is
documented where it is planted; :data:`TRUTH` holds their parameters (JSON-serialisable) and
:func:`truth` adds what depends on the seed (which reps are best and worst):

1. channels that drive conversion and channels that do not (marketing.py, CHANNEL_MODEL);
2. rep skill: win-rate multipliers, one star and one weak rep (org.py, BEST_SKILL / WORST_SKILL);
3. seasonality of deal and lead creation (_base.py, SEASON) and of closing (sales.py);
4. an SLA problem in one service team and priority (service.py, SLA_PROBLEM);
5. a churn spike month (customers.py, CHURN_SPIKE);
6. an anomalous month of new leads in one region (marketing.py, ANOMALY);
7. web-shop orders from BG/NBD and Gamma-Gamma with known parameters (customers.py, BGNBD).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import polars as pl

from ... import schema
from ...errors import ConfigError
from . import _base, accounts, customers, marketing, org, plans, sales, service
from ._base import DEMO_END, DEMO_START, SEASON

__all__ = ["DEMO_END", "DEMO_START", "TRUTH", "generate", "truth", "write_demo"]

BASE_CURRENCY = "CNY"

TRUTH: dict = {
    "version": 1,
    "start": DEMO_START.isoformat(),
    "as_of": DEMO_END.isoformat(),
    "base_currency": BASE_CURRENCY,
    "business_hours": {"days": "Mon-Fri", "start": "09:00", "end": "18:00", "holidays": []},
    "volumes_at_scale_1": {
        "accounts": accounts.ACCOUNTS_AT_SCALE_1,
        "leads": marketing.LEADS_AT_SCALE_1,
        "opportunities": sales.OPPORTUNITIES_AT_SCALE_1,
        "activities": 150_000,
        "touchpoints": 200_000,
        "cases": service.CASES_AT_SCALE_1,
        "sales_reps": sum(t[-1] for t in org.SALES_TEAMS),
        "sales_teams": len(org.SALES_TEAMS),
        "service_agents": sum(t[-1] for t in org.SERVICE_TEAMS),
        "campaigns": sum(k for _, k, _, _ in marketing.CAMPAIGN_PLAN),
    },
    # 1
    "channels": marketing.TRUTH["channels"],
    # 2 (ids of the best and worst reps: truth(scale, seed)["rep_skill"])
    "rep_skill": {
        "model": "P(win) = min(0.95, base rate of the deal type x skill of the owner); base rates do not depend "
                 "on segment, region or team",
        "base_win_rate_by_type": dict(zip(sales.TYPES, sales.BASE_WIN, strict=True)),
        "win_cap": sales.WIN_CAP,
        "others": {"distribution": "lognormal", "sigma": org.SKILL_SIGMA, "clip": list(org.SKILL_CLIP)},
        "best_multiplier": org.BEST_SKILL,
        "worst_multiplier": org.WORST_SKILL,
    },
    # 3
    "seasonality": {
        "creation_monthly_multiplier": dict(zip(
            ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), SEASON, strict=True)),
        "applies_to": ["opportunities.created_at", "leads.created_at", "accounts.created_at (outbound)"],
        "growth_per_year": _base.GROWTH_PER_YEAR,
        "weekend_factor": _base.WEEKEND_FACTOR,
        "peak_month": 12,
        "dip_month": 2,
        "close_pull_into_december": sales.PULL_INTO_DECEMBER,
        "close_push_out_of_february": sales.PUSH_OUT_OF_FEBRUARY,
    },
    # 4
    "sla": {
        **service.SLA_PROBLEM,
        "metric": "first public agent reply (case_events agent_reply, is_public) after created_at, business hours",
        "first_reply_target_business_hours": dict(service.FIRST_REPLY_TARGET_BH),
        "first_reply_median_business_hours": dict(service.FIRST_REPLY_MEDIAN_BH),
        "first_reply_log_sd": service.FIRST_REPLY_SIGMA,
        "team_speed": {t[0]: s for t, s in zip(org.SERVICE_TEAMS, service.TEAM_SPEED, strict=True)},
        "csat_share_satisfied": {"first_reply_met_sla": service.P_SATISFIED[0],
                                 "first_reply_missed_sla": service.P_SATISFIED[1]},
    },
    # 5
    "churn": {
        **customers.CHURN_SPIKE,
        "monthly_hazard_by_segment": dict(zip(org.SEGMENTS, customers.CHURN_MONTHLY_HAZARD, strict=True)),
        "event": "subscriptions.end_date (cancellation day)",
    },
    # 6
    "anomaly": marketing.TRUTH["anomaly"],
    # 7
    "bgnbd": {
        **customers.BGNBD,
        "time_unit": "week",
        "population": "accounts with at least one completed order (web shop opened at DEMO_START)",
        "birth": "first completed order of the account (trial purchase, not a repeat)",
        "T": "weeks from the first order to the end of DEMO_END",
        "dropout": "after each repeat order with probability p; never right after the first order",
        "buyer_share": customers.BUYER_SHARE,
    },
    "gamma_gamma": {
        **customers.GAMMA_GAMMA,
        "currency": BASE_CURRENCY,
        "applies_to": "every completed order (first included), amount converted to CNY at the order day's rate",
        "mean_order_value": customers.GAMMA_GAMMA["p"] * customers.GAMMA_GAMMA["v"] / (customers.GAMMA_GAMMA["q"] - 1),
    },
}


def _check(scale: float, seed: int) -> None:
    if not isinstance(scale, int | float) or not math.isfinite(scale) or scale <= 0:
        raise ConfigError(f"scale must be a positive number (1 is ~2,000 accounts), not {scale!r}.")
    if scale > 1000:
        raise ConfigError(f"scale {scale} is too large for one machine; use at most 1000.")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, not {seed!r}.")


def generate(
    scale: float = 1.0, seed: int = 42, progress: Callable[[str], None] | None = None
) -> dict[str, pl.DataFrame]:
    """Every canonical table of a simulated company, conformed to :mod:`crmlib.schema`.

    ``progress`` is called with each table's name once the table is generated.
    """
    _check(scale, seed)
    w = SimpleNamespace()
    out: dict[str, pl.DataFrame] = {}

    def put(frames: dict[str, pl.DataFrame]) -> None:
        for name, frame in frames.items():
            out[name] = schema.conform(frame, name)
            if progress:
                progress(name)

    w.org, base = org.build(seed)
    put(base)
    put({"fx_rates": plans.fx(w, seed)})
    put(marketing.campaigns(w, seed, scale))
    marketing.leads(w, seed, scale)
    put({"accounts": accounts.accounts(w, seed, scale)})
    put({"contacts": accounts.contacts(w, seed)})
    opp = sales.opportunities(w, seed, scale)
    put({"leads": marketing.leads_frame(w)})
    put(opp)
    put({"activities": sales.activities(w, seed)})
    put({"touchpoints": marketing.touchpoints(w, seed)})
    put(service.cases(w, seed, scale))
    put({"surveys": service.surveys(w, seed)})
    put({"orders": customers.orders(w, seed)})
    put({"subscriptions": customers.subscriptions(w, seed)})
    put({"targets": plans.targets(w, seed, scale)})
    return {name: out[name] for name in schema.TABLE_NAMES}


def truth(scale: float = 1.0, seed: int = 42) -> dict:
    """:data:`TRUTH` plus the planted facts that depend on the seed (JSON-serialisable)."""
    _check(scale, seed)
    o, _ = org.build(seed)
    t = copy.deepcopy(TRUTH)
    rep_ids = o.user_ids[o.rep_user]
    t["scale"], t["seed"] = scale, seed
    t["rep_skill"].update(
        best_rep_id=str(o.user_ids[o.best_rep]),
        worst_rep_id=str(o.user_ids[o.worst_rep]),
        skill_by_rep={str(u): round(float(s), 4) for u, s in zip(rep_ids, o.rep_skill, strict=True)},
    )
    t["expected_volumes"] = {k: round(v * scale) for k, v in TRUTH["volumes_at_scale_1"].items()
                             if k in ("accounts", "leads", "opportunities", "activities", "touchpoints", "cases")}
    return t


def write_demo(out: str | Path, scale: float = 1.0, seed: int = 42, progress: bool = True) -> Path:
    """Generate the demo company and write it as a DuckDB warehouse at ``out`` (atomically)."""
    from ... import __version__
    from ..warehouse import write_warehouse

    _check(scale, seed)
    meta = {"created_by": "demo", "scale": str(scale), "seed": str(seed), "crmlib_version": __version__,
            "as_of": DEMO_END.isoformat()}
    if not progress:
        return write_warehouse(out, generate(scale, seed), meta=meta)

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    n = len(schema.TABLE_NAMES)
    if not console.is_terminal:  # a log file or a pipe: a few plain lines instead of a live bar
        def say(msg: str) -> None:
            console.print(f"demo: {msg}", markup=False, highlight=False, soft_wrap=True)

        say(f"generating {n} tables (scale {scale}, seed {seed})")
        t0 = time.perf_counter()
        frames = generate(scale, seed)
        rows = sum(f.height for f in frames.values())
        say(f"generated {rows:,} rows in {time.perf_counter() - t0:.1f} s; writing {out}")
        t0 = time.perf_counter()
        path = write_warehouse(out, frames, meta=meta)
        say(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
        return path
    with Progress(
        TextColumn("[bold]demo[/] {task.description:<32}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as bar:
        task = bar.add_task(f"generating (scale {scale}, seed {seed})", total=2 * n)
        frames = generate(scale, seed, lambda name: bar.update(task, advance=1, description=f"generated {name}"))
        path = write_warehouse(out, frames, meta=meta,
                               progress=lambda name: bar.update(task, advance=1, description=f"writing {name}"))
        bar.update(task, completed=2 * n,
                   description=f"wrote {Path(path).name} ({sum(f.height for f in frames.values()):,} rows)")
    return path
