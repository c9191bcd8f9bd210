"""Agent and team leaderboards (see :func:`leaderboard`)."""

from __future__ import annotations

import polars as pl

from ..errors import ConfigError, suggest
from ._common import Window, in_window
from .analytics import prepare

LEADERBOARD_METRICS = {  # column -> higher is better
    "cases": True, "solved": True, "first_response_hours": False, "resolution_hours": False,
    "sla_compliance": True, "csat": True,
}


def leaderboard(crm, level: str = "agent", period=None, filters=None, hours: str = "business",
                sort_by: str = "solved", as_of=None, calendar=None, sla=None) -> pl.DataFrame:
    """Agents (``level="agent"``) or teams (``"team"``) ranked by ``sort_by``, with the conventions of
    :func:`crmlib.performance.leaderboard`: ``rank, member_id, name, [team_id], cases`` (created),
    ``solved``, ``first_response_hours`` (median, of the first responses in the period),
    ``resolution_hours`` (median full resolution of the cases solved), ``sla_compliance`` (outcomes settled
    in the period), ``csat`` (share of CSAT answers 4-5 given in the period about the member's cases),
    ``csat_responses``, ``ranked_by``, ``previous_rank`` and ``rank_change`` (> 0: moving up) against the
    previous period of the same length. The better value ranks first (lower times are better), ties share
    the better rank, members without a value come last. Members with no case, solve or answer in the
    period are left out; both periods are measured on the case histories as of the as-of instant."""
    from ..performance import previous_period

    if level not in ("agent", "team"):
        raise ConfigError(f"level must be 'agent' or 'team', not {level!r}.")
    if sort_by not in LEADERBOARD_METRICS:
        raise ConfigError(f"Cannot rank by {sort_by!r}.{suggest(str(sort_by), LEADERBOARD_METRICS)} "
                          f"Use one of: {', '.join(LEADERBOARD_METRICS)}.")
    facts, w, dims, _ = prepare(crm, level, "month", period, filters, as_of, hours, calendar, sla)
    cols = ["rank", "member_id", "name", *(["team_id"] if level == "agent" else []), *LEADERBOARD_METRICS,
            "csat_responses", "ranked_by", "previous_rank", "rank_change"]
    facts = facts.rename({level: "member_id"})
    csat = (crm.surveys.filter((pl.col("type") == "csat") & pl.col("score").is_not_null())
            .select("case_id", "score", "responded_at").collect()
            .join(facts.select("case_id", "member_id"), on="case_id"))
    higher = LEADERBOARD_METRICS[sort_by]
    boards = []
    for lo, hi in ((w.lo, w.hi), previous_period(w.lo, w.hi) if w.lo is not None else (None, None)):
        if lo is None:
            boards.append(pl.DataFrame(schema={"member_id": pl.String, **dict.fromkeys(LEADERBOARD_METRICS, pl.Float64),
                                               "csat_responses": pl.Int64, "rank": pl.Int64}))
            continue
        board = _board(facts, csat, Window(lo, hi, w.T))
        boards.append(board.with_columns(pl.col(sort_by).rank("min", descending=higher).cast(pl.Int64).alias("rank")))
    cur, prev = boards
    table, key = ("users", "user_id") if level == "agent" else ("teams", "team_id")
    names = crm.table(table).select(pl.col(key).alias("member_id"), "name", *(["team_id"] if level == "agent" else []))
    out = (cur.join(prev.select("member_id", pl.col("rank").alias("previous_rank")), on="member_id", how="left",
                    nulls_equal=True)
           .join(names.collect(), on="member_id", how="left")
           .with_columns(pl.lit(sort_by).alias("ranked_by"),
                         (pl.col("previous_rank") - pl.col("rank")).alias("rank_change")))
    return out.sort(["rank", "member_id"], nulls_last=True).select(cols)


def _board(facts: pl.DataFrame, csat: pl.DataFrame, w: Window) -> pl.DataFrame:
    """The leaderboard metrics of each member over one window (members active in it only)."""
    board = facts.group_by("member_id").agg(
        pl.col("created_at").filter(in_window("created_at", w)).len().cast(pl.Int64).alias("cases"),
        pl.col("solved_at").filter(in_window("solved_at", w)).len().cast(pl.Int64).alias("solved"),
        pl.col("first_response_hours").filter(in_window("first_response_at", w)).median()
        .alias("first_response_hours"),
        pl.col("full_resolution_hours").filter(in_window("solved_at", w)).median().alias("resolution_hours"),
        (pl.col("sla") == "met").filter(in_window("sla_at", w)).sum().alias("_met"),
        pl.col("sla").filter(in_window("sla_at", w)).is_in(["met", "breached"]).sum().alias("_settled"),
    )
    answers = csat.filter(in_window("responded_at", w)).group_by("member_id").agg(
        (pl.col("score") >= 4).mean().alias("csat"), pl.len().cast(pl.Int64).alias("csat_responses"))
    board = board.join(answers, on="member_id", how="full", coalesce=True, nulls_equal=True).with_columns(
        pl.when(pl.col("_settled") > 0).then(pl.col("_met") / pl.col("_settled")).alias("sla_compliance"),
        *[pl.col(c).fill_null(0) for c in ("cases", "solved", "csat_responses")])
    return board.filter((pl.col("cases") > 0) | (pl.col("solved") > 0) | (pl.col("csat_responses") > 0)).drop(
        "_met", "_settled")
