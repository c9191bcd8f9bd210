"""The demo simulator: conformance to the canonical model, determinism, volumes, and planted truths.

Planted truths are checked on the raw tables with direct computations written here, independently
of the generator's code (only parameters come from TRUTH). Generation at scale 1 takes well under a
second, so the planted-truth tests run at scale 1, for two seeds.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest
from scipy.special import betaln, hyp2f1

from crmlib import schema
from crmlib.errors import ConfigError
from crmlib.sources.demo import DEMO_END, DEMO_START, TRUTH, generate, truth, write_demo

AS_OF = datetime.combine(DEMO_END + timedelta(days=1), datetime.min.time())  # end of the as-of day
# planted truths are checked for these seeds (override to sweep: CRMLIB_DEMO_TEST_SEEDS=0,1,2,...)
TRUTH_SEEDS = tuple(int(s) for s in os.environ.get("CRMLIB_DEMO_TEST_SEEDS", "42,7").split(","))


@pytest.fixture(scope="module")
def small() -> dict[str, pl.DataFrame]:
    return generate(0.1, seed=42)


@pytest.fixture(scope="module", params=TRUTH_SEEDS, ids=lambda s: f"seed{s}")
def world(request) -> tuple[dict[str, pl.DataFrame], dict]:
    return generate(1.0, seed=request.param), truth(1.0, seed=request.param)


# ---------------------------------------------------------------------------------------------
# Conformance
# ---------------------------------------------------------------------------------------------
def check_conforms(frames: dict[str, pl.DataFrame]) -> None:
    assert tuple(frames) == schema.TABLE_NAMES
    for name, df in frames.items():
        t = schema.table(name)
        assert df.height > 0, f"{name} is empty"
        assert df.schema == t.polars_schema, name
        assert schema.conform(df, name).equals(df), name
        for col in t.required_columns:
            assert df[col].null_count() == 0, f"{name}.{col} has nulls"
        assert df.select(t.primary_key).is_duplicated().sum() == 0, f"{name} primary key not unique"
        for c in t.columns:
            if c.enum:
                bad = set(df[c.name].drop_nulls().unique()) - set(schema.ENUMS[c.enum])
                assert not bad, f"{name}.{c.name}: {bad}"
            if c.non_negative:
                assert (df[c.name].drop_nulls() >= 0).all(), f"{name}.{c.name} negative"
        for col, ref_table, ref_col in t.foreign_keys:
            values = df[col].drop_nulls().unique()
            missing = values.filter(~values.is_in(frames[ref_table][ref_col].implode()))
            assert missing.len() == 0, f"{name}.{col} -> {ref_table}: {missing.head(3).to_list()}"
        for start, end in t.ordered:
            pair = df.select(pl.col(start).cast(pl.Date).alias("s"), pl.col(end).cast(pl.Date).alias("e")).drop_nulls()
            assert (pair["e"] >= pair["s"]).all(), f"{name}: {end} before {start}"
            if df[start].dtype == df[end].dtype:
                both = df.select(start, end).drop_nulls()
                assert (both[end] >= both[start]).all(), f"{name}: {end} before {start}"
        if t.time_column and name not in {"accounts", "subscriptions", "fx_rates", "targets", "contacts"}:
            col = df[t.time_column]
            assert col.min() >= (DEMO_START if col.dtype == pl.Date else datetime(2023, 1, 1)), name
            assert col.max() < (DEMO_END + timedelta(days=1) if col.dtype == pl.Date else AS_OF), name


@pytest.mark.parametrize("scale", [0.05, 0.2])
def test_every_table_conforms(scale):
    check_conforms(generate(scale, seed=3))


def test_nothing_happens_after_the_as_of_day(small):
    for name, df in small.items():
        for c in schema.table(name).columns:
            if c.dtype == "datetime":
                assert df[c.name].drop_nulls().max() < AS_OF, f"{name}.{c.name}"
    # only open deals may have an expected close date after DEMO_END
    opp = small["opportunities"]
    assert opp.filter(pl.col("is_closed"))["close_date"].max() <= DEMO_END
    assert opp.filter(~pl.col("is_closed")).height > 0
    assert small["cases"].filter(pl.col("closed_at").is_null()).height > 0


def test_opportunities_are_consistent(small):
    opp, hist = small["opportunities"], small["opportunity_history"]
    prob = pl.DataFrame({"stage": list(schema.DEFAULT_STAGE_PROBABILITY),
                         "p": list(schema.DEFAULT_STAGE_PROBABILITY.values())})
    fc = {"prospecting": "pipeline", "qualification": "pipeline", "needs_analysis": "best_case",
          "proposal": "best_case", "negotiation": "commit", "closed_won": "closed", "closed_lost": "omitted"}
    for df in (opp, hist):
        j = df.join(prob, on="stage")
        assert (j["probability"] == j["p"]).all()
        assert (df["forecast_category"] == df["stage"].replace_strict(fc)).all()
    assert (opp["is_closed"] == opp["stage"].is_in(schema.CLOSED_STAGES)).all()
    assert (opp["is_won"] == (opp["stage"] == "closed_won")).all()
    assert (opp["lost_reason"].is_not_null() == (opp["stage"] == "closed_lost")).all()
    assert (opp["close_date"] >= opp["created_at"].dt.date()).all()
    # history: stages in pipeline order, one row per stage, starting at prospecting at creation
    order = pl.DataFrame({"stage": list(schema.STAGE_ORDER), "k": list(schema.STAGE_ORDER.values())})
    h = hist.join(order, on="stage").sort("opportunity_id", "changed_at")
    steps = h.group_by("opportunity_id", maintain_order=True).agg(
        first=pl.col("stage").first(), last=pl.col("stage").last(), first_at=pl.col("changed_at").first(),
        ok=(pl.col("k").diff().drop_nulls() >= 1).all(), n=pl.len(),
        last_amount=pl.col("amount").last(), last_close=pl.col("close_date").last())
    s = steps.join(opp, on="opportunity_id")
    assert s.height == opp.height
    assert s["ok"].all() and (s["first"] == "prospecting").all()
    assert (s["first_at"] == s["created_at"]).all()
    assert (s["last"] == s["stage"]).all()
    assert (s["last_amount"] == s["amount"]).all() and (s["last_close"] == s["close_date"]).all()
    won = s.filter(pl.col("stage") == "closed_won")
    assert (won["n"] == 6).all()  # won deals went through all five open stages
    lost = s.filter(pl.col("stage") == "closed_lost")
    assert lost["n"].min() == 2 and lost["n"].max() == 6  # lost deals drop out at every stage


def test_leads_funnel_and_conversion_links(small):
    leads, opp = small["leads"], small["opportunities"]
    assert (leads.select(pl.col("mql_at") >= pl.col("created_at")).drop_nulls().to_series()).all()
    assert leads.filter(pl.col("sql_at").is_not_null() & pl.col("mql_at").is_null()).height == 0
    assert leads.filter(pl.col("converted_at").is_not_null() & pl.col("sql_at").is_null()).height == 0
    conv = leads.filter(pl.col("converted_at").is_not_null())
    assert (conv["status"] == "converted").all()
    assert conv["converted_opportunity_id"].null_count() == 0 and conv["converted_account_id"].null_count() == 0
    assert leads.filter(pl.col("converted_at").is_null())["converted_opportunity_id"].null_count() == \
        leads.filter(pl.col("converted_at").is_null()).height
    j = conv.join(opp, left_on="converted_opportunity_id", right_on="opportunity_id")
    assert j.height == conv.height
    assert (j["lead_id"] == j["lead_id_right"]).all()
    assert (j["created_at_right"] == j["converted_at"]).all()
    assert (j["account_id"] == j["converted_account_id"]).all()
    assert opp["lead_id"].drop_nulls().len() == conv.height
    # every converted lead became a contact of the converted account
    ct = small["contacts"].filter(pl.col("lead_id").is_not_null())
    assert ct.height == conv.height
    # journeys: touches of a lead happen before its conversion
    tp = small["touchpoints"].filter(pl.col("lead_id").is_not_null()).join(conv, on="lead_id")
    assert (tp["occurred_at"] <= tp["converted_at"]).all()


def test_cases_follow_their_events(small):
    cases, ev = small["cases"], small["case_events"]
    sc = ev.filter(pl.col("event_type") == "status_change").sort("case_id", "occurred_at", "event_id")
    per = sc.group_by("case_id", maintain_order=True).agg(first=pl.col("status").first(),
                                                         last=pl.col("status").last(),
                                                         solved=pl.col("occurred_at").filter(pl.col("status") == "solved").max())
    j = cases.join(per, on="case_id")
    assert j.height == cases.height
    assert (j["first"] == "new").all() and (j["last"] == j["status"]).all()
    done = j.filter(pl.col("status").is_in(["solved", "closed"]))
    assert (done["closed_at"] == done["solved"]).all()
    assert j.filter(~pl.col("status").is_in(["solved", "closed"]))["closed_at"].null_count() == \
        j.filter(~pl.col("status").is_in(["solved", "closed"])).height
    assert (ev.filter(pl.col("event_type").is_in(["agent_reply", "customer_reply"]))["is_public"]).all()
    assert not ev.filter(pl.col("event_type") == "internal_note")["is_public"].any()
    assert ev.filter(pl.col("event_type") == "status_change")["is_public"].null_count() == sc.height
    # some cases were reopened: solved more than once
    reopened = sc.filter(pl.col("status") == "solved").group_by("case_id").len().filter(pl.col("len") > 1)
    assert reopened.height > 0
    assert set(sc["status"].unique()) == set(schema.ENUMS["case_status"])


def test_surveys_scores(small):
    sv = small["surveys"]
    assert (sv["score"].is_null() == sv["responded_at"].is_null()).all()
    ranges = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
    for kind, (lo, hi) in ranges.items():
        s = sv.filter(pl.col("type") == kind)["score"].drop_nulls()
        assert s.len() > 0 and s.min() >= lo and s.max() <= hi, kind
    assert 0.2 < sv["score"].is_not_null().mean() < 0.5  # some unanswered


def test_targets_cascade(small):
    tg = small["targets"]
    assert set(tg["kpi"].unique()) == {"revenue", "won_deals", "new_leads", "sla_compliance", "csat"}
    assert (tg["grain"] == "month").all() and (tg["period"].dt.day() == 1).all()
    users, teams = small["users"], small["teams"]
    for kpi in ("revenue", "won_deals"):
        k = tg.filter(pl.col("kpi") == kpi)
        assert set(k["level"].unique()) == {"company", "department", "team", "user"}
        rep = k.filter(pl.col("level") == "user").join(users.select(pl.col("user_id").alias("entity_id"), "team_id"),
                                                       on="entity_id")
        team_sum = rep.group_by("period", "team_id").agg(pl.col("value").sum().alias("s"))
        team = k.filter(pl.col("level") == "team").join(team_sum, left_on=["period", "entity_id"],
                                                         right_on=["period", "team_id"])
        assert team.height == k.filter(pl.col("level") == "team").height
        assert np.allclose(team["value"], team["s"])
        dept = k.filter(pl.col("level") == "team").join(teams.select(pl.col("team_id").alias("entity_id"),
                                                                     "department"), on="entity_id")
        dsum = dept.group_by("period", "department").agg(pl.col("value").sum().alias("s"))
        d = k.filter(pl.col("level") == "department").join(dsum, left_on=["period", "entity_id"],
                                                            right_on=["period", "department"])
        assert d.height == k.filter(pl.col("level") == "department").height and np.allclose(d["value"], d["s"])
        comp = k.filter(pl.col("level") == "company").sort("period")["value"].to_numpy()
        assert np.allclose(comp, k.filter(pl.col("level") == "department").group_by("period").agg(
            pl.col("value").sum()).sort("period")["value"].to_numpy())
    ratio = tg.filter(pl.col("kpi").is_in(["sla_compliance", "csat"]))
    assert (ratio["level"] == "team").all() and ratio["value"].is_between(0, 1).all()
    assert set(ratio["entity_id"]) == set(teams.filter(pl.col("function") == "service")["team_id"])
    # revenue targets are of the order of the actual closed-won revenue (attainment 60-110%)
    won = small["opportunities"].filter(pl.col("is_won") & (pl.col("close_date").dt.year() == 2025))
    fx = small["fx_rates"]
    rev = won.join(fx, left_on=["close_date", "currency"], right_on=["date", "currency"]).select(
        (pl.col("amount") * pl.col("rate_to_base")).sum()).item()
    target = tg.filter((pl.col("kpi") == "revenue") & (pl.col("level") == "company")
                       & (pl.col("period").dt.year() == 2025))["value"].sum()
    assert 0.6 < rev / target < 1.1


def test_currencies_and_fx(small):
    fx = small["fx_rates"]
    assert set(fx["currency"]) == {"CNY", "USD", "EUR"}
    assert (fx.filter(pl.col("currency") == "CNY")["rate_to_base"] == 1.0).all()
    usd = fx.filter(pl.col("currency") == "USD")["rate_to_base"]
    assert usd.min() >= 7.0 and usd.max() <= 7.4
    days = (DEMO_END - fx["date"].min()).days + 1
    assert fx.group_by("currency").len()["len"].to_list() == [days] * 3  # daily, no gaps
    share = (small["opportunities"]["currency"] == "USD").mean()
    assert 0.10 < share < 0.20
    assert (small["orders"]["currency"] == "USD").any()


# ---------------------------------------------------------------------------------------------
# Determinism, scaling, API
# ---------------------------------------------------------------------------------------------
def test_same_seed_same_frames_and_different_seed_differs():
    a, b, c = generate(0.05, seed=11), generate(0.05, seed=11), generate(0.05, seed=12)
    for name in schema.TABLE_NAMES:
        assert a[name].equals(b[name]), name
    differs = [n for n in schema.TABLE_NAMES if not a[n].equals(c[n])]
    # the org chart, catalog and campaign plan have a fixed shape; the names and all business differ
    assert set(differs) >= set(schema.TABLE_NAMES) - {"teams", "products"}


def test_volumes_scale_linearly():
    a, b = generate(0.1, seed=5), generate(0.2, seed=5)
    for name in ("accounts", "leads", "opportunities", "opportunity_history", "activities", "touchpoints",
                 "cases", "case_events", "contacts", "subscriptions"):
        ratio = b[name].height / a[name].height
        assert 1.75 < ratio < 2.25, (name, ratio)
    # orders are heavy-tailed (BG/NBD): the number of buying accounts is what scales
    buyers = [f["orders"]["account_id"].n_unique() for f in (a, b)]
    assert 1.75 < buyers[1] / buyers[0] < 2.25
    for name in ("teams", "users", "products", "campaigns", "fx_rates", "targets"):
        assert a[name].height == b[name].height, name
    # marketing budgets scale with the business
    assert 1.9 < b["marketing_spend"]["amount"].sum() / a["marketing_spend"]["amount"].sum() < 2.1


@pytest.mark.slow
def test_counts_at_scale_1_match_the_targets(tmp_path):
    f = generate(1.0, seed=42)
    expected = {"accounts": 2000, "opportunities": 12000, "activities": 150_000, "touchpoints": 200_000,
                "cases": 15_000, "leads": 20_000, "campaigns": 40}
    for name, n in expected.items():
        assert 0.75 * n <= f[name].height <= 1.25 * n, (name, f[name].height)
    users, teams = f["users"], f["teams"]
    reps = users.filter(pl.col("role") == "sales_rep")
    assert reps.height == 50
    sales_teams = teams.filter(pl.col("function") == "sales")
    assert sales_teams.height == 8 and sales_teams["department"].n_unique() == 3
    assert set(sales_teams["region"]) == {"North", "East", "South", "West"}
    assert teams.filter(pl.col("function") == "service").height == 4
    assert users.filter(pl.col("role") == "service_agent").height == 30
    assert 1 <= users.filter(pl.col("role") == "marketer").height <= 10
    assert f["opportunity_history"].height > 3 * f["opportunities"].height
    # written and read back through crmlib.open: same content
    import crmlib

    path = write_demo(tmp_path / "crm.duckdb", scale=1.0, seed=42, progress=False)
    with crmlib.open(path) as crm:
        counts = crm.row_counts()
    assert counts == {name: df.height for name, df in f.items()}


def test_write_demo_is_atomic_with_meta_and_progress(tmp_path, capfd):
    out = tmp_path / "sub" / "demo.duckdb"
    path = write_demo(out, scale=0.05, seed=9, progress=True)
    assert path == out.resolve() and path.exists()
    err = capfd.readouterr().err
    assert "demo: generated" in err and f"demo: wrote {path}" in err  # plain lines: stderr is not a terminal
    con = duckdb.connect(str(path), read_only=True)
    try:
        meta = dict(con.sql("SELECT key, value FROM _crmlib_meta").fetchall())
        n_opp = con.execute("SELECT count(*) FROM opportunities").fetchall()[0][0]
    finally:
        con.close()
    assert meta["created_by"] == "demo" and meta["seed"] == "9" and meta["scale"] == "0.05"
    assert "crmlib_version" in meta
    assert n_opp == generate(0.05, seed=9)["opportunities"].height
    # rewriting replaces the file in one piece and leaves no temporary files behind
    write_demo(out, scale=0.05, seed=10, progress=False)
    assert sorted(p.name for p in out.parent.iterdir()) == ["demo.duckdb"]


def test_progress_callback_names_every_table_once():
    seen: list[str] = []
    generate(0.02, seed=1, progress=seen.append)
    assert sorted(seen) == sorted(schema.TABLE_NAMES)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "1"])
def test_bad_scale_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        generate(bad)


def test_truth_is_json_and_names_real_reps(small):
    t = truth(0.1, 42)
    json.dumps(TRUTH)
    json.dumps(t)
    reps = small["users"].filter(pl.col("role") == "sales_rep")["user_id"].to_list()
    assert t["rep_skill"]["best_rep_id"] in reps and t["rep_skill"]["worst_rep_id"] in reps
    assert set(t["rep_skill"]["skill_by_rep"]) == set(reps)
    assert TRUTH["start"] == DEMO_START.isoformat() == "2023-01-01" and TRUTH["as_of"] == "2026-06-30"


# ---------------------------------------------------------------------------------------------
# Planted truths, each recovered with a direct computation on the raw tables (scale 1)
# ---------------------------------------------------------------------------------------------
def _journeys(f: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per lead created before March 2026 (so that conversions had time to happen) with the
    set of channels it touched before converting, and whether it converted."""
    leads = f["leads"].filter(pl.col("created_at") < datetime(2026, 3, 1)).select(
        "lead_id", converted=pl.col("converted_at").is_not_null())
    chans = f["touchpoints"].filter(pl.col("lead_id").is_not_null()).group_by("lead_id").agg(
        pl.col("channel").unique().alias("channels"))
    return leads.join(chans, on="lead_id", how="left")


def test_truth_1_channels(world):
    f, t = world
    j = _journeys(f)
    lift = {}
    for ch in schema.ENUMS["channel"]:
        has = j["channels"].list.contains(ch)
        lift[ch] = j.filter(has)["converted"].mean() - j.filter(~has)["converted"].mean()
    for ch in t["channels"]["no_effect"]:
        assert abs(lift[ch]) < 0.02, (ch, lift[ch])  # no causal effect: no difference
    for ch in t["channels"]["effective"]:
        assert lift[ch] > 0.05, (ch, lift[ch])
    assert max(lift, key=lift.get) in ("events", "referral")  # the two largest planted effects
    # yet the useless channels get the most money and the most touches
    spend = f["marketing_spend"].group_by("channel").agg(pl.col("amount").sum()).sort("amount", descending=True)
    assert set(spend["channel"].head(2)) == {"display", "social_paid"}
    touches = f["touchpoints"].group_by("channel").len().sort("len", descending=True)
    assert set(touches["channel"].head(2)) == {"display", "social_paid"}


def test_truth_2_rep_skill(world):
    f, t = world
    wr = f["opportunities"].filter(pl.col("is_closed")).group_by("owner_id").agg(
        n=pl.len(), win_rate=pl.col("is_won").mean()).sort("win_rate", descending=True)
    assert wr.height == 50 and wr["n"].min() >= 50
    assert wr["owner_id"][0] == t["rep_skill"]["best_rep_id"]
    assert wr["owner_id"][-1] == t["rep_skill"]["worst_rep_id"]
    median = wr["win_rate"].median()
    assert wr["win_rate"][0] > 1.35 * median and wr["win_rate"][-1] < 0.7 * median


def test_truth_3_seasonality(world):
    f, _ = world
    opp = f["opportunities"].filter(pl.col("created_at").dt.year() <= 2025)  # full years only
    by_month = opp.group_by(pl.col("created_at").dt.month().alias("m")).len().sort("m")["len"].to_numpy()
    assert by_month.argmin() == 1  # February (Chinese New Year)
    assert by_month.argmax() in (10, 11)  # Q4 peak: November or December
    assert by_month[11] / by_month[1] > 1.8
    won = f["opportunities"].filter(pl.col("is_won") & (pl.col("close_date").dt.year().is_between(2023, 2025)))
    closes = won.group_by(pl.col("close_date").dt.month().alias("m")).len().sort("m")["len"].to_numpy()
    assert closes[11] > closes[10] and closes[11] > closes[0]  # December pull-in
    assert closes[1] == closes.min() and closes[2] > 1.5 * closes[1]  # February slips into March


def _business_hours(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Business hours (Mon-Fri 09:00-18:00) between two datetime64 arrays, computed with numpy."""
    def clock(ts):
        day = ts.astype("datetime64[D]")
        hour = (ts - day) / np.timedelta64(1, "h")
        workday = np.is_busday(day)
        # hours of the day already worked at ts, and whole business days before ts
        done = np.where(workday, np.clip(hour, 9.0, 18.0) - 9.0, 0.0)
        return np.busday_count(np.datetime64("2000-01-03"), day) * 9.0 + done
    return clock(end) - clock(start)


def test_truth_4_sla_problem(world):
    f, t = world
    ev, cases = f["case_events"], f["cases"]
    first = ev.filter((pl.col("event_type") == "agent_reply") & pl.col("is_public")).group_by("case_id").agg(
        pl.col("occurred_at").min().alias("first_reply"))
    c = cases.join(first, on="case_id")
    c = c.with_columns(
        wall=(pl.col("first_reply") - pl.col("created_at")).dt.total_seconds() / 3600,
        bh=pl.Series(_business_hours(c["created_at"].to_numpy(), c["first_reply"].to_numpy())),
        target=pl.col("priority").replace_strict(t["sla"]["first_reply_target_business_hours"]),
    )
    cells = c.group_by("team_id", "priority").agg(
        median_wall=pl.col("wall").median(), median_bh=pl.col("bh").median(),
        compliance=(pl.col("bh") <= pl.col("target")).mean(), n=pl.len())
    assert cells.height == 16 and cells["n"].min() >= 30
    for col, best_first in (("median_wall", True), ("median_bh", True), ("compliance", False)):
        top = cells.sort(col, descending=best_first).row(0, named=True)
        assert (top["team_id"], top["priority"]) == (t["sla"]["team_id"], t["sla"]["priority"]), col
    worst = cells.sort("compliance")["compliance"].to_list()
    assert worst[0] < 0.5 and worst[1] > 0.65
    # the log-normal medians planted in business hours are recovered
    bad = cells.filter((pl.col("team_id") == "T11") & (pl.col("priority") == "high"))["median_bh"].item()
    assert bad == pytest.approx(t["sla"]["first_reply_median_business_hours"]["high"] * t["sla"]["multiplier"],
                                rel=0.2)


def test_truth_5_churn_spike(world):
    f, t = world
    ends = f["subscriptions"].filter(pl.col("end_date").is_not_null()).group_by(
        pl.col("end_date").dt.strftime("%Y-%m").alias("month")).len()
    top = ends.sort("len", descending=True)
    assert top["month"][0] == t["churn"]["month"]
    assert top["len"][0] > 2.5 * ends["len"].median()


def test_truth_6_anomalous_month(world):
    f, t = world
    a = t["anomaly"]
    monthly = f["leads"].filter(pl.col("region") == a["region"]).group_by(
        pl.col("created_at").dt.strftime("%Y-%m").alias("month")).len().sort("month")
    counts = dict(zip(monthly["month"], monthly["len"], strict=True))
    y, m = map(int, a["month"].split("-"))
    neighbours = [counts[f"{yy}-{mm:02d}"] for yy, mm in ((y, m - 1), (y, m + 1), (y - 1, m), (y + 1, m))]
    assert counts[a["month"]] < 0.45 * np.mean(neighbours)
    # against the same calendar month of the other years (seasonality cancels out; the planted yearly
    # growth is taken out), no other month of that region is anywhere near as far off
    g = 1 + t["seasonality"]["growth_per_year"]
    m = monthly.with_columns(cal=pl.col("month").str.slice(5, 2), y=pl.col("month").str.slice(0, 4).cast(pl.Int64))
    m = m.with_columns(level=pl.col("len") / g ** (pl.col("y") - 2023))  # in 2023 terms
    m = m.with_columns(other=(pl.col("level").sum().over("cal") - pl.col("level")) / (pl.len().over("cal") - 1))
    ranked = m.with_columns(rel=pl.col("level") / pl.col("other")).sort("rel")
    assert ranked["month"][0] == a["month"]
    assert ranked["rel"][0] < 0.45 and ranked["rel"][1] > 0.55


def _bgnbd_expected_repeats(t: np.ndarray, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """E[X(t)] of BG/NBD, Fader, Hardie & Lee (2005), equation 9."""
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def test_truth_7_bgnbd_orders_and_gamma_gamma_spend():
    f, t = generate(2.0, seed=42), TRUTH  # more customers for a tighter check
    p = t["bgnbd"]
    orders = f["orders"].filter(pl.col("status") == "completed")
    cust = orders.group_by("account_id").agg(first=pl.col("ordered_at").min(), n=pl.len()).with_columns(
        x=pl.col("n") - 1, T=(pl.lit(AS_OF) - pl.col("first")).dt.total_seconds() / (7 * 86400))  # weeks
    T = cust["T"].to_numpy()
    assert cust.height > 2000
    expected = _bgnbd_expected_repeats(T, p["r"], p["alpha"], p["a"], p["b"]).mean()
    assert cust["x"].mean() == pytest.approx(expected, rel=0.15)
    # P(X(T) = 0) = (alpha / (alpha + T))^r, averaged over customers
    p0 = ((p["alpha"] / (p["alpha"] + T)) ** p["r"]).mean()
    assert (cust["x"] == 0).mean() == pytest.approx(p0, abs=0.04)
    # P(X(T) = 1) = B(a, b+1)/B(a, b) * r * (alpha/(alpha+T))^r * T/(alpha+T) + B(a+1, b)/B(a, b) * (1 - (alpha/(alpha+T))^r)
    q = p["alpha"] / (p["alpha"] + T)
    p1 = (np.exp(betaln(p["a"], p["b"] + 1) - betaln(p["a"], p["b"])) * p["r"] * q ** p["r"] * (1 - q)
          + np.exp(betaln(p["a"] + 1, p["b"]) - betaln(p["a"], p["b"])) * (1 - q ** p["r"])).mean()
    assert (cust["x"] == 1).mean() == pytest.approx(p1, abs=0.04)
    # Gamma-Gamma: a customer's mean spend (CNY) has expectation p v / (q - 1)
    g = t["gamma_gamma"]
    spend = orders.join(f["fx_rates"], left_on=[pl.col("ordered_at").dt.date(), "currency"],
                        right_on=["date", "currency"]).with_columns(z=pl.col("amount") * pl.col("rate_to_base"))
    per_customer = spend.group_by("account_id").agg(pl.col("z").mean())["z"]
    assert per_customer.mean() == pytest.approx(g["p"] * g["v"] / (g["q"] - 1), rel=0.1)
    # within a customer, spend per order is Gamma(p, nu): its coefficient of variation is 1/sqrt(p)
    cv = spend.group_by("account_id").agg(m=pl.col("z").mean(), s=pl.col("z").std(), n=pl.len()).filter(
        pl.col("n") >= 5).select((pl.col("s") / pl.col("m")).median()).item()
    assert cv == pytest.approx(1 / np.sqrt(g["p"]), rel=0.25)
