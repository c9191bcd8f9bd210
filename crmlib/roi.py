"""ROI of an investment (a CRM rollout, a campaign, more reps) from the company's own measured baseline.

>>> crm = crmlib.open()                                                         # doctest: +SKIP
>>> r = crmlib.roi.calculate(crm, upfront_cost=500_000, monthly_cost=20_000, horizon_months=24,
...                          win_rate_change=0.02, deal_size_change=0.05)        # doctest: +SKIP
>>> r.npv, r.irr_annual, r.payback_months; r.cash_flows; r.tornado()          # doctest: +SKIP

**Baseline** (:func:`baseline`), measured over a baseline period (default: the 12 complete months before
the data's last day) with the KPI engine: decided deals per month = (``won_deals`` + ``lost_deals``) /
months, win rate = won / decided (the catalog's ``win_rate`` over the whole period), average deal size =
``revenue`` / won, new leads per month; and from the subscriptions (:func:`crmlib.customers.subscription_retention`):
MRR at the end of the period and the monthly revenue churn = (churned + contraction MRR) / opening MRR
summed over the period's complete months (1 − GRR). Months = days / 30.4375.

**Effects** (parameters; ``r_t`` = the ramp-up share of month t: t / ``ramp_months`` up to 1, or 1):

* new-business revenue of month t = D·(1 + l·r_t) × (w + x·r_t) × S·(1 + y·r_t), against D·w·S without the
  investment, where D = decided deals per month, w = win rate, S = deal size, x = ``win_rate_change``
  (added: 0.02 is two percentage points), y = ``deal_size_change``, l = ``leads_change`` (relative; more
  leads are assumed to bring proportionally more decided deals at the same conversion);
* recurring revenue: the MRR M of the baseline's end, churning each month at c (baseline) or
  c·(1 + z·r_t) with z = ``churn_change`` (relative: −0.1 cuts churn by a tenth); revenue of month t is
  M × the share retained after t months; new subscriptions are not modelled (they are the same in both cases);
* incremental margin = ``margin`` × incremental revenue; cash flow of month 0 = −``upfront_cost``; of month
  t = incremental margin − ``monthly_cost``.

**Money measures**: NPV at ``discount_rate`` (annual, turned into the monthly rate (1 + r)^(1/12) − 1), IRR
(monthly root of NPV = 0 by :func:`scipy.optimize.brentq`, and annualised), payback (months until the
cumulative cash flow turns non-negative, interpolated within the month as cash flows accrue evenly) and
discounted payback. The tornado (:meth:`RoiResult.tornado`) re-computes the NPV with each assumption at
its low and high value (base × (1 ∓ ``sensitivity``)), the others at base.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, fields, replace

import numpy as np
import polars as pl

from .errors import ConfigError
from .sources import Crm

__all__ = [
    "Assumptions",
    "Baseline",
    "IrrResult",
    "RoiResult",
    "baseline",
    "calculate",
    "evaluate",
    "irr",
    "monthly_rate",
    "npv",
    "payback",
]

DAYS_PER_MONTH = 365.25 / 12
MAX_HORIZON = 600
# IRR search grid: rates per period from -99 % to +1000 %, in log(1 + r)
_GRID = np.expm1(np.linspace(math.log(0.01), math.log(11.0), 4001))


# ---------------------------------------------------------------------------------------------------
# Money arithmetic (pure functions, tested by hand)
# ---------------------------------------------------------------------------------------------------
def _check_rate(rate: float, what: str = "discount rate") -> float:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise ConfigError(f"The {what} must be a number such as 0.1 for 10 %, not {rate!r}.")
    if rate <= -1:
        raise ConfigError(
            f"The {what} must be above -100 % (-1.0); {rate!r} would make money worthless. "
            "Give it as a fraction: 0.1 is 10 % a year."
        )
    return float(rate)


def npv(rate: float, cash_flows) -> float:
    """Net present value: Σ cf_t / (1 + rate)^t, t = 0, 1, 2, … (the first cash flow is not discounted)."""
    rate = _check_rate(rate)
    cf = np.asarray(cash_flows, dtype=float)
    return float(np.sum(cf / (1.0 + rate) ** np.arange(cf.size)))


def monthly_rate(annual: float) -> float:
    """The monthly rate equivalent to an annual one: (1 + annual)^(1/12) − 1."""
    return (1.0 + _check_rate(annual)) ** (1.0 / 12.0) - 1.0


@dataclass(frozen=True)
class IrrResult:
    """``rate`` per period, or None with ``reason`` saying why the IRR is undefined."""

    rate: float | None
    reason: str | None = None

    def annual(self, periods_per_year: int = 12) -> float | None:
        return None if self.rate is None else (1.0 + self.rate) ** periods_per_year - 1.0


def irr(cash_flows) -> IrrResult:
    """Internal rate of return per period: the rate making :func:`npv` zero, by ``scipy.optimize.brentq``
    between the sign changes of the NPV on a grid of rates from −99 % to +1000 % per period.

    Undefined (``rate`` None and a ``reason``) when the cash flows never change sign, when no rate in that
    range makes the NPV zero, or when several do (then the IRR is ambiguous: use the NPV)."""
    from scipy.optimize import brentq

    cf = np.asarray(cash_flows, dtype=float)
    nz = cf[cf != 0]
    if nz.size == 0 or np.all(nz > 0) or np.all(nz < 0):
        return IrrResult(
            None,
            "undefined: the cash flows never change sign (all costs or all gains), so no "
            "discount rate makes the NPV zero",
        )
    t = np.arange(cf.size)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        values = np.array([np.sum(cf / (1.0 + r) ** t) for r in _GRID])
    roots = []
    for i in range(len(_GRID) - 1):
        a, b = values[i], values[i + 1]
        if not (np.isfinite(a) and np.isfinite(b)):
            continue
        if a == 0:
            roots.append(float(_GRID[i]))
        elif a * b < 0:
            roots.append(
                float(
                    brentq(
                        lambda r: float(np.sum(cf / (1.0 + r) ** t)),
                        _GRID[i],
                        _GRID[i + 1],
                        xtol=1e-14,
                        rtol=1e-12,
                        maxiter=200,
                    )
                )
            )
    if not roots:
        return IrrResult(None, "undefined: no rate between -99 % and +1000 % per period makes the NPV zero")
    if len(roots) > 1:
        shown = ", ".join(f"{r * 100:.2f} %" for r in roots[:4])
        return IrrResult(
            None,
            f"undefined: several rates make the NPV zero ({shown}); the cash flows change sign "
            "more than once, so judge the investment by its NPV",
        )
    return IrrResult(roots[0])


def payback(cash_flows) -> float | None:
    """Months (periods) until the cumulative cash flow first turns non-negative, the cash flow of period t
    accruing evenly over it: (t − 1) + (−cumulative at t − 1) / cf_t. 0 when nothing is owed at t = 0;
    None when the cumulative cash flow stays negative within the horizon."""
    cf = np.asarray(cash_flows, dtype=float)
    cum = np.cumsum(cf)
    if cum.size == 0:
        return None
    if cum[0] >= 0:
        return 0.0
    hits = np.nonzero(cum >= 0)[0]
    if hits.size == 0:
        return None
    t = int(hits[0])
    return float((t - 1) + (-cum[t - 1]) / cf[t])


# ---------------------------------------------------------------------------------------------------
# Baseline
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Baseline:
    """The measured baseline (see the module docstring); amounts in the base currency, per month."""

    start: dt.date
    end: dt.date
    months: float
    decided_deals: float  # per month
    win_rate: float
    deal_size: float
    new_leads: float  # per month
    mrr: float
    churn: float  # monthly revenue churn (1 - GRR)

    @property
    def revenue(self) -> float:
        """New-business revenue per month: decided deals × win rate × deal size (= revenue / months)."""
        return self.decided_deals * self.win_rate * self.deal_size


def _day(value, what: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(
            f"{what} must be a date YYYY-MM-DD (or empty for the default), not {value!r}."
        ) from None


def _baseline_period(crm: Crm, start, end) -> tuple[dt.date, dt.date]:
    from .executive import default_as_of
    from .kpis._periods import add_months

    lo, hi = _day(start, "baseline_start"), _day(end, "baseline_end")
    if hi is None:
        last = default_as_of(crm)
        nxt = last + dt.timedelta(days=1)
        hi = last if nxt.day == 1 else last.replace(day=1) - dt.timedelta(days=1)  # last complete month
    if lo is None:
        lo = add_months(hi.replace(day=1), -11)
    if hi < lo:
        raise ConfigError(f"The baseline period ends ({hi}) before it starts ({lo}).")
    return lo, hi


def baseline(crm: Crm, start=None, end=None) -> Baseline:
    """Measure the baseline KPIs over ``start``..``end`` (see the module docstring)."""
    lo, hi = _baseline_period(crm, start, end)
    rows = crm.kpis(
        ["revenue", "won_deals", "lost_deals", "new_leads"],
        grain="month",
        period=(lo, hi),
        targets=False,
        as_of=hi,
    )
    tot = {
        k: float(rows.filter(pl.col("kpi") == k).get_column("value").fill_null(0).sum())
        for k in ("revenue", "won_deals", "lost_deals", "new_leads")
    }
    months = ((hi - lo).days + 1) / DAYS_PER_MONTH
    decided = tot["won_deals"] + tot["lost_deals"]
    if tot["won_deals"] == 0:
        raise ConfigError(
            f"No deal was won between {lo} and {hi}: there is no win rate or deal size to build "
            "the ROI on. Choose a baseline period with closed deals (baseline_start, baseline_end)."
        )
    mrr, churn = _subscriptions(crm, lo, hi)
    return Baseline(
        start=lo,
        end=hi,
        months=months,
        decided_deals=decided / months,
        win_rate=tot["won_deals"] / decided,
        deal_size=tot["revenue"] / tot["won_deals"],
        new_leads=tot["new_leads"] / months,
        mrr=mrr,
        churn=churn,
    )


def _subscriptions(crm: Crm, lo: dt.date, hi: dt.date) -> tuple[float, float]:
    """(MRR at the end of the last complete month, monthly revenue churn over the complete months)."""
    from . import customers

    if crm.table("subscriptions").select(pl.len()).collect().item() == 0:
        return 0.0, 0.0
    ret = customers.subscription_retention(customers.load(crm, as_of=hi))
    ret = ret.filter((pl.col("month") >= lo) & (pl.col("month") <= hi))
    opening = float(ret.get_column("opening_mrr").sum())
    if ret.height == 0 or opening <= 0:
        return 0.0, 0.0
    lost = float(ret.get_column("churned_mrr").sum() + ret.get_column("contraction_mrr").sum())
    return float(ret.get_column("closing_mrr")[-1]), lost / opening


# ---------------------------------------------------------------------------------------------------
# Assumptions and the model
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Assumptions:
    """The investment and its expected effects (fractions: 0.05 is 5 %; see the module docstring)."""

    upfront_cost: float = 0.0
    monthly_cost: float = 0.0
    horizon_months: int = 24
    discount_rate: float = 0.10
    margin: float = 0.30
    win_rate_change: float = 0.0
    deal_size_change: float = 0.0
    churn_change: float = 0.0
    leads_change: float = 0.0
    ramp_months: int = 0

    def check(self, base: Baseline | None = None) -> Assumptions:
        """Raise :class:`ConfigError` naming every bad parameter and what would be right."""
        problems = []
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                problems.append(f"{f.name} must be a number, not {v!r}")
        if problems:
            raise ConfigError("ROI parameters: " + "; ".join(problems) + ".")
        for name in ("horizon_months", "ramp_months"):
            v = getattr(self, name)
            if v != int(v):
                problems.append(f"{name} must be a whole number of months, not {v!r}")
        if not 1 <= self.horizon_months <= MAX_HORIZON:
            problems.append(f"horizon_months must be from 1 to {MAX_HORIZON}, not {self.horizon_months!r}")
        if self.ramp_months < 0:
            problems.append(f"ramp_months must be 0 or more, not {self.ramp_months!r}")
        for name in ("upfront_cost", "monthly_cost"):
            if getattr(self, name) < 0:
                problems.append(
                    f"{name} must be 0 or more (a cost, in the base currency), not {getattr(self, name)!r}"
                )
        if self.discount_rate <= -1:
            problems.append(
                f"discount_rate must be above -100 % (-1.0), not {self.discount_rate!r}; "
                "give it as a fraction (0.1 is 10 % a year)"
            )
        if not 0 <= self.margin <= 1:
            problems.append(f"margin must be a fraction from 0 to 1 (0.3 is 30 %), not {self.margin!r}")
        for name in ("deal_size_change", "churn_change", "leads_change"):
            if getattr(self, name) < -1:
                problems.append(f"{name} must be -1.0 (-100 %) or more, not {getattr(self, name)!r}")
        if base is not None:
            w = base.win_rate + self.win_rate_change
            if not 0 <= w <= 1:
                problems.append(
                    f"win_rate_change {self.win_rate_change!r} takes the measured win rate "
                    f"{base.win_rate:.1%} to {w:.1%}; it must stay between 0 % and 100 % "
                    "(0.02 adds two percentage points)"
                )
            if base.churn * (1 + self.churn_change) > 1:
                problems.append(f"churn_change {self.churn_change!r} takes the monthly churn above 100 %")
        if problems:
            raise ConfigError("ROI parameters: " + "; ".join(problems) + ".")
        return self


def _cash_flows(base: Baseline, a: Assumptions) -> dict[str, np.ndarray]:
    h = int(a.horizon_months)
    t = np.arange(1, h + 1, dtype=float)
    ramp = np.minimum(1.0, t / a.ramp_months) if a.ramp_months > 0 else np.ones(h)
    sales_new = (
        base.decided_deals
        * (1 + a.leads_change * ramp)
        * (base.win_rate + a.win_rate_change * ramp)
        * base.deal_size
        * (1 + a.deal_size_change * ramp)
    )
    sales = sales_new - base.revenue
    kept_base = (1 - base.churn) ** t
    kept_new = np.cumprod(1 - base.churn * (1 + a.churn_change * ramp))
    recurring = base.mrr * (kept_new - kept_base)
    revenue = sales + recurring
    margin = a.margin * revenue
    cost = np.full(h, float(a.monthly_cost))
    flows = np.concatenate([[-float(a.upfront_cost)], margin - cost])
    zero = np.zeros(1)
    return {
        "month": np.arange(h + 1),
        "sales_revenue": np.concatenate([zero, sales]),
        "recurring_revenue": np.concatenate([zero, recurring]),
        "incremental_revenue": np.concatenate([zero, revenue]),
        "incremental_margin": np.concatenate([zero, margin]),
        "cost": np.concatenate([[float(a.upfront_cost)], cost]),
        "cash_flow": flows,
    }


def evaluate(base: Baseline, assumptions: Assumptions, sensitivity: float = 0.5) -> RoiResult:
    """Apply the assumptions to the baseline: cash flows, NPV, IRR, payback (see the module docstring)."""
    a = assumptions.check(base)
    if isinstance(sensitivity, bool) or not isinstance(sensitivity, int | float) or not 0 < sensitivity < 1:
        raise ConfigError(
            f"sensitivity must be a fraction between 0 and 1 (0.5 varies each assumption by ±50 %), "
            f"not {sensitivity!r}."
        )
    cf = _cash_flows(base, a)
    rate = monthly_rate(a.discount_rate)
    flows = cf["cash_flow"]
    disc = flows / (1 + rate) ** cf["month"]
    frame = pl.DataFrame(
        {
            **{k: v for k, v in cf.items()},
            "cumulative": np.cumsum(flows),
            "discounted": disc,
            "cumulative_discounted": np.cumsum(disc),
        }
    ).with_columns(pl.col("month").cast(pl.Int64))
    r = irr(flows)
    return RoiResult(
        baseline=base,
        assumptions=a,
        sensitivity=float(sensitivity),
        monthly_discount_rate=rate,
        cash_flows=frame,
        npv=npv(rate, flows),
        irr=r,
        payback_months=payback(flows),
        discounted_payback_months=payback(disc),
    )


def calculate(
    crm: Crm, baseline_start: str = "", baseline_end: str = "", sensitivity: float = 0.5, **assumptions
) -> RoiResult:
    """:func:`baseline` of ``crm`` + :func:`evaluate` with :class:`Assumptions` from keyword arguments."""
    known = {f.name for f in fields(Assumptions)}
    unknown = sorted(set(assumptions) - known)
    if unknown:
        from .errors import suggest

        raise ConfigError(
            f"Unknown ROI parameter {unknown[0]!r}.{suggest(unknown[0], known)} "
            f"Known: {', '.join(sorted(known))}."
        )
    a = Assumptions(**assumptions).check()
    return evaluate(baseline(crm, baseline_start, baseline_end), a, sensitivity)


# ---------------------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------------------
TORNADO = (
    "win_rate_change",
    "deal_size_change",
    "churn_change",
    "leads_change",
    "margin",
    "discount_rate",
    "upfront_cost",
    "monthly_cost",
)


@dataclass(frozen=True)
class RoiResult:
    baseline: Baseline
    assumptions: Assumptions
    sensitivity: float
    monthly_discount_rate: float
    cash_flows: pl.DataFrame = field(repr=False)
    npv: float
    irr: IrrResult
    payback_months: float | None
    discounted_payback_months: float | None

    @property
    def irr_monthly(self) -> float | None:
        return self.irr.rate

    @property
    def irr_annual(self) -> float | None:
        return self.irr.annual(12)

    def metrics(self) -> pl.DataFrame:
        """``metric, value, note``: npv, irr_annual, irr_monthly, payback_months, discounted_payback_months,
        total_cost, incremental_margin (over the horizon); ``note`` says why a value is missing."""
        cf = self.cash_flows
        h = self.assumptions.horizon_months
        not_within = f"not within the {h}-month horizon"
        recs = [
            ("npv", self.npv, None),
            ("irr_annual", self.irr_annual, self.irr.reason),
            ("irr_monthly", self.irr_monthly, self.irr.reason),
            ("payback_months", self.payback_months, None if self.payback_months is not None else not_within),
            (
                "discounted_payback_months",
                self.discounted_payback_months,
                None if self.discounted_payback_months is not None else not_within,
            ),
            ("total_cost", float(cf.get_column("cost").sum()), None),
            ("incremental_margin", float(cf.get_column("incremental_margin").sum()), None),
        ]
        return pl.DataFrame(
            recs, schema={"metric": pl.String, "value": pl.Float64, "note": pl.String}, orient="row"
        )

    def baseline_table(self) -> pl.DataFrame:
        """``measure, unit, baseline, scenario``: the measured baseline and its value at full effect."""
        b, a = self.baseline, self.assumptions
        rows = [
            ("decided_deals", "count", b.decided_deals, b.decided_deals * (1 + a.leads_change)),
            ("win_rate", "percent", b.win_rate, b.win_rate + a.win_rate_change),
            ("deal_size", "currency", b.deal_size, b.deal_size * (1 + a.deal_size_change)),
            ("new_leads", "count", b.new_leads, b.new_leads * (1 + a.leads_change)),
            (
                "revenue",
                "currency",
                b.revenue,
                b.decided_deals
                * (1 + a.leads_change)
                * (b.win_rate + a.win_rate_change)
                * b.deal_size
                * (1 + a.deal_size_change),
            ),
            ("mrr", "currency", b.mrr, b.mrr),
            ("churn", "percent", b.churn, b.churn * (1 + a.churn_change)),
        ]
        return pl.DataFrame(
            rows,
            schema={"measure": pl.String, "unit": pl.String, "baseline": pl.Float64, "scenario": pl.Float64},
            orient="row",
        ).with_columns(pl.lit(str(b.start)).alias("start"), pl.lit(str(b.end)).alias("end"))

    def tornado(self) -> pl.DataFrame:
        """NPV with each assumption at low and high (base × (1 ∓ sensitivity), kept within its valid range),
        the others at base: ``assumption, base_value, low_value, high_value, npv_low, npv_high, swing,
        base_npv``, largest swing first; assumptions whose base is 0 are left out (nothing to vary)."""
        s, a, b = self.sensitivity, self.assumptions, self.baseline
        recs = []
        for name in TORNADO:
            v = float(getattr(a, name))
            if v == 0:
                continue
            lo, hi = sorted((v * (1 - s), v * (1 + s)))
            if name == "margin":
                hi = min(hi, 1.0)
            if name == "win_rate_change":
                lo, hi = max(lo, -b.win_rate), min(hi, 1 - b.win_rate)
            if name in ("deal_size_change", "churn_change", "leads_change"):
                lo = max(lo, -1.0)
            n_lo = evaluate(b, replace(a, **{name: lo}), s).npv
            n_hi = evaluate(b, replace(a, **{name: hi}), s).npv
            recs.append((name, v, lo, hi, n_lo, n_hi, abs(n_hi - n_lo), self.npv))
        return pl.DataFrame(
            recs,
            schema={
                "assumption": pl.String,
                "base_value": pl.Float64,
                "low_value": pl.Float64,
                "high_value": pl.Float64,
                "npv_low": pl.Float64,
                "npv_high": pl.Float64,
                "swing": pl.Float64,
                "base_npv": pl.Float64,
            },
            orient="row",
        ).sort("swing", descending=True)
