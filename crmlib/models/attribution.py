"""Multi-touch attribution on aggregated customer journeys: rule-based models, and the dispatcher.

Every model takes a **path frame** (polars ``DataFrame`` or ``LazyFrame``), one row per distinct journey:

========================  ==================  ====================================================
column                    type                meaning
========================  ==================  ====================================================
``path``                  list[str]           channels touched, in time order (repeats allowed)
``conversions``           number >= 0         journeys of this path that converted
``value``                 number >= 0         conversion value of those journeys (0 if absent)
``nulls``                 number >= 0         journeys of this path that did not convert (0 if absent)
``campaigns`` (optional)  list[str | null]    campaign of each touch (same length as ``path``)
``times`` (optional)      list[float]         days from each touch to the conversion (>= 0);
                                              needed by :func:`time_decay`
``lead_index`` (opt.)     int | null          0-based position in ``path`` of the lead-creation touch
``opportunity_index``     int | null          0-based position of the opportunity-creation touch;
(optional)                                    both needed by :func:`w_shaped` (null: no such touch)
========================  ==================  ====================================================

:func:`crmlib.marketing.journeys` builds this frame from touchpoints; :func:`read_path_csv` reads the
ChannelAttribution ``path;total_conversions;total_conversion_value;total_null`` format.

Every model returns a tidy frame ``channel, conversions, value`` (one row per channel seen in any path,
zero credit included), or ``channel, campaign, conversions, value`` when the frame has ``campaigns``
(``by_campaign=None`` means "when present"). **Every model conserves the totals**: the attributed
conversions and value add up to the frame's total conversions and value.

Rule-based models weight the touches of each path; the weights of a path add up to 1 and its
conversions and value are split by them (computed with polars list explode / group_by, never a Python
loop over paths):

* :func:`first_touch`, :func:`last_touch`, :func:`linear` (1/n per touch);
* :func:`time_decay`: weight ``2 ** (-days before conversion / half_life)`` normalised per path
  (default half-life 7 days);
* :func:`u_shaped` (position-based, 40/20/40): first and last touch 40 % each, the 20 % split evenly
  over the touches between. A 1-touch path gives its touch 100 %; a 2-touch path has no middle, so the
  weights are renormalised: 50/50 (in general first / (first + last) and last / (first + last));
* :func:`w_shaped` (30/30/30/10): 30 % each to the first touch, the lead-creation touch
  (``lead_index``) and the opportunity-creation touch (``opportunity_index``), 10 % split evenly over
  the other touches. Where key touches coincide their weights add (first touch = lead creation: 60 %);
  a missing key (null index) or an empty rest gives nothing, and the path's weights are renormalised
  to 1 (a 1-touch path gives its touch 100 %).

Data-driven models: :func:`crmlib.models.markov.markov` (exact absorbing-chain removal effects) and
:func:`crmlib.models.shapley.shapley` (simplified Shapley value of Zhao et al. 2018). They credit
channels; where the frame has campaigns, a channel's credit is split over its campaigns in the
proportion of the channel's :func:`linear` credit by campaign (:func:`split_by_campaign`).
Neither is causal, and they credit different things: first-order Markov rewards a channel's reach and
touch frequency, Shapley and whole-path Markov (``order="path"``) its presence on converting journeys
(docs/attribution.md, with the demo's planted truth).

:func:`attribute` runs a model by name; :func:`compare_models` runs several into one long frame.

References
----------
Shao, X. and Li, L. (2011). Data-driven multi-touch attribution models. KDD '11.
Anderl, E., Becker, I., von Wangenheim, F. and Schumann, J. H. (2016). Mapping the customer journey:
    lessons learned from graph-based online attribution modeling. IJRM 33(3).
Zhao, K., Mahboobi, S. H. and Bagheri, S. R. (2018). Shapley value methods for attribution modeling in
    online advertising. arXiv:1804.05327.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from ..errors import ConfigError, SourceError, suggest

__all__ = [
    "MODELS",
    "RULE_BASED",
    "DATA_DRIVEN",
    "attribute",
    "channel_codes",
    "channels_of",
    "compare_models",
    "first_touch",
    "last_touch",
    "linear",
    "prepare_paths",
    "read_path_csv",
    "split_by_campaign",
    "time_decay",
    "u_shaped",
    "w_shaped",
]

RULE_BASED = ("first_touch", "last_touch", "linear", "time_decay", "u_shaped", "w_shaped")
DATA_DRIVEN = ("markov", "shapley")
MODELS = RULE_BASED + DATA_DRIVEN

_OPTIONAL_LISTS = ("campaigns", "times")
_OPTIONAL_INDEX = ("lead_index", "opportunity_index")
_SAMPLE = 5


# ---------------------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------------------
def _bad(what: str, frame: pl.DataFrame, mask: pl.Expr, hint: str) -> ConfigError:
    rows = frame.with_row_index("_row").filter(mask)
    shown = ", ".join(str(r + 1) for r in rows.get_column("_row").head(_SAMPLE).to_list())
    more = f" (first {_SAMPLE} of {rows.height})" if rows.height > _SAMPLE else ""
    return ConfigError(f"Path frame: {what}; rows {shown}{more}. {hint}")


def prepare_paths(paths: pl.DataFrame | pl.LazyFrame, need: Sequence[str] = ()) -> pl.DataFrame:
    """Check a path frame and return it collected, with defaults filled and empty rows dropped.

    ``conversions``, ``value`` and ``nulls`` become Float64 (``value`` and ``nulls`` default to 0).
    Rows with neither conversions nor nulls are dropped (an empty path must have no conversion; value
    without conversions is an error). ``need`` names optional columns the calling model requires. Raises
    :class:`~crmlib.errors.ConfigError` naming the column, rows and what to do.
    """
    if isinstance(paths, pl.LazyFrame):
        paths = paths.collect()
    if not isinstance(paths, pl.DataFrame):
        raise ConfigError(
            f"Attribution models take a polars DataFrame of paths, not {type(paths).__name__}. Build one with "
            "crmlib.marketing.journeys(crm, ...) or crmlib.models.attribution.read_path_csv(file)."
        )
    cols = paths.columns
    for required in ("path", "conversions", *need):
        if required not in cols:
            known = ("path", "conversions", "value", "nulls", *_OPTIONAL_LISTS, *_OPTIONAL_INDEX)
            hint = {
                "times": " time_decay needs the days from each touch to the conversion: "
                         "crmlib.marketing.journeys(...) adds them.",
                "lead_index": " w_shaped needs the position of the lead-creation touch (and opportunity_index): "
                              "crmlib.marketing.journeys(...) adds them.",
                "opportunity_index": " w_shaped needs the position of the opportunity-creation touch: "
                                     "crmlib.marketing.journeys(...) adds it.",
            }.get(required, "")
            raise ConfigError(
                f"Path frame has no column {required!r}.{suggest(required, [c for c in cols if c not in known])}"
                f"{hint} Its columns are: {', '.join(cols) or '(none)'}."
            )
    if not isinstance(paths.schema["path"], pl.List) or paths.schema["path"].inner != pl.String:
        raise ConfigError(
            f"Path frame column 'path' must be a list of channel names (list[str]), not {paths.schema['path']}. "
            "For text like 'a > b > c' use pl.col('path').str.split(' > ')."
        )
    out = paths.with_columns(
        *(pl.lit(0.0).alias(c) for c in ("value", "nulls") if c not in cols),
    )
    for c in ("conversions", "value", "nulls"):
        dtype = out.schema[c]
        if not dtype.is_numeric():
            raise ConfigError(f"Path frame column {c!r} must be numeric, not {dtype}.")
        out = out.with_columns(pl.col(c).cast(pl.Float64))
        bad = pl.col(c).is_null() | ~pl.col(c).is_finite() | (pl.col(c) < 0)
        if out.select(bad.any()).item():
            sample = out.filter(bad).get_column(c).head(_SAMPLE).to_list()
            raise _bad(f"column {c!r} has missing, infinite or negative values {sample}", out, bad,
                       "Counts and values must be finite numbers >= 0.")
    if out.select(pl.col("path").is_null().any()).item():
        raise _bad("column 'path' is null", out, pl.col("path").is_null(), "Use an empty list for no touches.")
    if out.select(pl.col("path").list.eval(pl.element().is_null()).list.any().any()).item():
        mask = pl.col("path").list.eval(pl.element().is_null()).list.any()
        raise _bad("a path has a null channel", out, mask, "Every touch needs a channel name.")
    orphan = (pl.col("value") > 0) & (pl.col("conversions") == 0)
    if out.select(orphan.any()).item():
        raise _bad("a path has value but no conversions", out, orphan,
                   "value is the value of the path's conversions: give the conversions, or set value to 0.")
    n = pl.col("path").list.len()
    empty_conv = (n == 0) & ((pl.col("conversions") > 0) | (pl.col("value") > 0))
    if out.select(empty_conv.any()).item():
        raise _bad("a path with no touches has conversions or value", out, empty_conv,
                   "Attribution cannot credit a conversion without touches: drop those rows, or give them a "
                   "channel such as 'direct'.")
    for c in _OPTIONAL_LISTS:
        if c in cols:
            if not isinstance(out.schema[c], pl.List):
                raise ConfigError(f"Path frame column {c!r} must be a list (one entry per touch), not {out.schema[c]}.")
            mismatch = pl.col(c).list.len() != n
            if out.select(mismatch.any()).item():
                raise _bad(f"column {c!r} has a different length than 'path'", out, mismatch,
                           f"Give one {c[:-1]} per touch.")
    if "campaigns" in cols and out.schema["campaigns"].inner != pl.String:
        out = out.with_columns(pl.col("campaigns").cast(pl.List(pl.String)))
    if "times" in cols:
        out = out.with_columns(pl.col("times").cast(pl.List(pl.Float64)))
        bad_t = pl.col("times").list.eval(pl.element().is_null() | ~pl.element().is_finite() | (pl.element() < 0))
        mask = bad_t.list.any() & (n > 0)
        if out.select(mask.any()).item():
            raise _bad("column 'times' has missing, infinite or negative days", out, mask,
                       "times are the days from each touch to the conversion, >= 0.")
    for c in _OPTIONAL_INDEX:
        if c in cols:
            out = out.with_columns(pl.col(c).cast(pl.Int64))
            mask = pl.col(c).is_not_null() & ((pl.col(c) < 0) | (pl.col(c) >= n))
            if out.select(mask.any()).item():
                raise _bad(f"column {c!r} points outside the path", out, mask,
                           "It is the 0-based position of the touch in 'path', or null.")
    return out.filter((n > 0) & ((pl.col("conversions") > 0) | (pl.col("nulls") > 0)))


def read_path_csv(file: str | Path, sep: str = ";", path_sep: str = " > ") -> pl.DataFrame:
    """Read the ChannelAttribution path format (``path;total_conversions;total_conversion_value;total_null``).

    Returns the path frame ``path, conversions, value, nulls`` (columns already named that way are
    kept). The ChannelAttribution demo data is ``../shared/data/channelattribution_pathdata/Data.csv``.
    """
    file = Path(file)
    if not file.exists():
        raise SourceError(f"Path file {file} does not exist.")
    raw = pl.read_csv(file, separator=sep, infer_schema_length=10_000)
    names = {"total_conversions": "conversions", "total_conversion_value": "value", "total_null": "nulls"}
    raw = raw.rename({k: v for k, v in names.items() if k in raw.columns})
    if "path" not in raw.columns or "conversions" not in raw.columns:
        raise SourceError(
            f"{file}: expected columns path and total_conversions (or conversions), separated by {sep!r}; found "
            f"{', '.join(raw.columns)}."
        )
    return raw.with_columns(pl.col("path").cast(pl.String).str.split(path_sep).list.eval(pl.element().str.strip_chars()))


def channels_of(paths: pl.DataFrame) -> list[str]:
    """Every channel named in any path, sorted."""
    return sorted(paths.get_column("path").explode(empty_as_null=False).drop_nulls().unique().to_list())


def channel_codes(paths: pl.DataFrame, channels: list[str]):
    """Touches as numpy arrays: (channel code of every touch, path after path; path lengths)."""
    import numpy as np

    col = paths.get_column("path")
    codes = col.explode(empty_as_null=False).cast(pl.Enum(channels)).to_physical().to_numpy().astype(np.int64)
    return codes, col.list.len().to_numpy().astype(np.int64)


def _use_campaigns(paths: pl.DataFrame, by_campaign: bool | None) -> bool:
    if by_campaign and "campaigns" not in paths.columns:
        raise ConfigError("by_campaign=True needs a 'campaigns' column in the path frame (one campaign per touch).")
    return "campaigns" in paths.columns if by_campaign is None else bool(by_campaign)


def _complete(credit: pl.DataFrame, paths: pl.DataFrame, campaign: bool) -> pl.DataFrame:
    """Add zero rows for channels (or channel-campaign pairs) that got no credit; sort."""
    keys = ["channel", "campaign"] if campaign else ["channel"]
    if campaign:
        seen = (paths.select(pl.col("path").alias("channel"), pl.col("campaigns").alias("campaign"))
                .explode(["channel", "campaign"]).unique())
    else:
        seen = pl.DataFrame({"channel": channels_of(paths)}, schema={"channel": pl.String})
    out = seen.join(credit, on=keys, how="left", nulls_equal=True).with_columns(
        pl.col("conversions").fill_null(0.0), pl.col("value").fill_null(0.0)
    )
    return out.select(*keys, "conversions", "value").sort(keys, nulls_last=True)


def _empty(campaign: bool) -> pl.DataFrame:
    schema = {"channel": pl.String, **({"campaign": pl.String} if campaign else {}),
              "conversions": pl.Float64, "value": pl.Float64}
    return pl.DataFrame(schema=schema)


# ---------------------------------------------------------------------------------------------------
# Rule-based models: a weight per touch, normalised per path
# ---------------------------------------------------------------------------------------------------
def _touches(paths: pl.DataFrame, campaign: bool, extra: Sequence[str] = ()) -> pl.DataFrame:
    """One row per touch: pid, pos (0-based), n (path length), channel, [campaign], extras."""
    lists = ["path", *(["campaigns"] if campaign else []), *[c for c in extra if c in _OPTIONAL_LISTS]]
    scalars = [c for c in extra if c not in _OPTIONAL_LISTS]
    return (
        paths.with_row_index("pid")
        .select("pid", *lists, *scalars, "conversions", "value", pl.col("path").list.len().alias("n"))
        .explode(lists)
        .with_columns(pl.int_range(pl.len()).over("pid").alias("pos"))
        .rename({"path": "channel", **({"campaigns": "campaign"} if campaign else {})})
    )


def _credit(touches: pl.DataFrame, weight: pl.Expr, paths: pl.DataFrame, campaign: bool) -> pl.DataFrame:
    keys = ["channel", "campaign"] if campaign else ["channel"]
    share = (weight / weight.sum().over("pid")).alias("_w")
    credit = (
        touches.with_columns(share)
        .group_by(keys)
        .agg((pl.col("_w") * pl.col("conversions")).sum().alias("conversions"),
             (pl.col("_w") * pl.col("value")).sum().alias("value"))
    )
    return _complete(credit, paths, campaign)


def _rule(paths, by_campaign, weight_of, need: Sequence[str] = ()) -> pl.DataFrame:
    paths = prepare_paths(paths, need)
    campaign = _use_campaigns(paths, by_campaign)
    if paths.height == 0:
        return _empty(campaign)
    touches = _touches(paths, campaign, need)
    return _credit(touches, weight_of(), paths, campaign)


def first_touch(paths, by_campaign: bool | None = None) -> pl.DataFrame:
    """All credit to the first touch of each path."""
    return _rule(paths, by_campaign, lambda: (pl.col("pos") == 0).cast(pl.Float64))


def last_touch(paths, by_campaign: bool | None = None) -> pl.DataFrame:
    """All credit to the last touch of each path."""
    return _rule(paths, by_campaign, lambda: (pl.col("pos") == pl.col("n") - 1).cast(pl.Float64))


def linear(paths, by_campaign: bool | None = None) -> pl.DataFrame:
    """Equal credit to every touch of a path (1/n each)."""
    return _rule(paths, by_campaign, lambda: (pl.col("pos") >= 0).cast(pl.Float64))


def time_decay(paths, half_life_days: float = 7.0, by_campaign: bool | None = None) -> pl.DataFrame:
    """Credit by recency: weight ``2 ** (-days before conversion / half_life_days)``, normalised per path.

    Needs the ``times`` column (days from each touch to the conversion). A touch ``half_life_days``
    before the conversion weighs half as much as one at the conversion.
    """
    if not (isinstance(half_life_days, int | float) and math.isfinite(half_life_days) and half_life_days > 0):
        raise ConfigError(f"half_life_days must be a positive number of days, not {half_life_days!r}.")
    # 2^(-(t - t_min)/h): the same normalised weights, without underflow on long paths
    def weight():
        t = pl.col("times")
        return (2.0 ** (-(t - t.min().over("pid")) / half_life_days)).cast(pl.Float64)

    return _rule(paths, by_campaign, weight, need=("times",))


def _check_weights(**weights: float) -> None:
    for name, w in weights.items():
        if not (isinstance(w, int | float) and math.isfinite(w) and w >= 0):
            raise ConfigError(f"Weight {name} must be a number >= 0, not {w!r}.")


def u_shaped(paths, first: float = 0.4, middle: float = 0.2, last: float = 0.4,
             by_campaign: bool | None = None) -> pl.DataFrame:
    """Position-based: ``first`` to the first touch, ``last`` to the last, ``middle`` split over the rest.

    Weights are renormalised per path: 1 touch gets 100 %, 2 touches ``first/(first+last)`` and
    ``last/(first+last)`` (50/50 by default).
    """
    _check_weights(first=first, middle=middle, last=last)
    if first + last <= 0:
        raise ConfigError("u_shaped needs first + last > 0, or a 1- or 2-touch path would get no credit.")

    def weight():
        pos, n = pl.col("pos"), pl.col("n")
        inner = pl.when((pos > 0) & (pos < n - 1)).then(middle / (n - 2).clip(lower_bound=1)).otherwise(0.0)
        return first * (pos == 0).cast(pl.Float64) + last * (pos == n - 1).cast(pl.Float64) + inner

    return _rule(paths, by_campaign, weight)


def w_shaped(paths, first: float = 0.3, lead: float = 0.3, opportunity: float = 0.3, rest: float = 0.1,
             by_campaign: bool | None = None) -> pl.DataFrame:
    """W-shaped: ``first``, ``lead`` and ``opportunity`` to the first, lead-creation and opportunity-creation
    touches, ``rest`` split evenly over the other touches; renormalised per path.

    The key touches are given by the columns ``lead_index`` and ``opportunity_index`` (0-based positions in
    ``path``; null when the journey has no such touch). Coinciding keys add their weights.
    """
    _check_weights(first=first, lead=lead, opportunity=opportunity, rest=rest)
    if first <= 0:
        raise ConfigError("w_shaped needs first > 0 so that every path has some credit to give.")

    def weight():
        pos = pl.col("pos")
        li, oi = pl.col("lead_index"), pl.col("opportunity_index")
        is_lead = (pos == li).fill_null(False)
        is_opp = (pos == oi).fill_null(False)
        key = (pos == 0) | is_lead | is_opp
        n_rest = (~key).cast(pl.Int64).sum().over("pid")
        other = pl.when(~key).then(rest / n_rest.clip(lower_bound=1)).otherwise(0.0)
        return (first * (pos == 0).cast(pl.Float64) + lead * is_lead.cast(pl.Float64)
                + opportunity * is_opp.cast(pl.Float64) + other)

    return _rule(paths, by_campaign, weight, need=("lead_index", "opportunity_index"))


# ---------------------------------------------------------------------------------------------------
# Channel credit -> campaigns (data-driven models)
# ---------------------------------------------------------------------------------------------------
def split_by_campaign(channel_credit: pl.DataFrame, paths: pl.DataFrame) -> pl.DataFrame:
    """Split each channel's credit over its campaigns in proportion to the channel's linear credit by campaign.

    Conversions are split by linear conversions, value by linear value (by linear conversions where the
    channel's linear value is 0). Totals per channel are kept exactly.
    """
    lin = linear(paths, by_campaign=True)
    shares = lin.with_columns(
        (pl.col("conversions") / pl.col("conversions").sum().over("channel")).alias("_sc"),
        (pl.col("value") / pl.col("value").sum().over("channel")).alias("_sv"),
        (1.0 / pl.len().over("channel")).alias("_eq"),
    ).with_columns(
        pl.col("_sc").fill_nan(None).fill_null(pl.col("_eq")),
        pl.col("_sv").fill_nan(None).fill_null(pl.col("_sc").fill_nan(None)).fill_null(pl.col("_eq")),
    )
    extra = [c for c in channel_credit.columns if c not in ("channel", "conversions", "value")]
    out = shares.join(channel_credit, on="channel", how="left", suffix="_m").select(
        "channel", "campaign",
        (pl.col("_sc") * pl.col("conversions_m").fill_null(0.0)).alias("conversions"),
        (pl.col("_sv") * pl.col("value_m").fill_null(0.0)).alias("value"),
        *[(pl.col("_sc") * pl.col(c)).alias(c) for c in extra],
    )
    return out.sort("channel", "campaign", nulls_last=True)


# ---------------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------------
def _model_function(name: str):
    if name not in MODELS:
        raise ConfigError(f"Unknown attribution model {name!r}.{suggest(name, MODELS)} Models: {', '.join(MODELS)}.")
    if name == "markov":
        from .markov import markov

        return markov
    if name == "shapley":
        from .shapley import shapley

        return shapley
    return globals()[name]


def attribute(paths, model: str = "markov", **options) -> pl.DataFrame:
    """Run one model by name (:data:`MODELS`); ``options`` go to the model function.

    >>> attribute(paths, "time_decay", half_life_days=3)        # doctest: +SKIP
    """
    return _model_function(model)(paths, **options)


def compare_models(paths, models: Sequence[str] = MODELS, half_life_days: float = 7.0,
                   by_campaign: bool | None = False, options: dict | None = None) -> pl.DataFrame:
    """Several models on the same paths, long: ``model, channel, [campaign], conversions, value``.

    ``options`` maps a model name to extra keyword arguments (``{"markov": {"order": 2}}``). Models that need
    a column the frame lacks (``times`` for time_decay, ``lead_index``/``opportunity_index`` for w_shaped)
    raise :class:`~crmlib.errors.ConfigError`.
    """
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    for m in models:
        _model_function(m)
    paths = prepare_paths(paths)
    options = dict(options or {})
    parts = []
    for m in models:
        opts = dict(options.get(m, {}))
        if m == "time_decay":
            opts.setdefault("half_life_days", half_life_days)
        frame = attribute(paths, m, by_campaign=by_campaign, **opts)
        keys = ["channel", "campaign"] if "campaign" in frame.columns else ["channel"]
        parts.append(frame.select(pl.lit(m).alias("model"), *keys, "conversions", "value"))
    if not parts:
        raise ConfigError("compare_models needs at least one model name.")
    return pl.concat(parts)
