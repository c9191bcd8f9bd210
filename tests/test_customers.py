"""crmlib.customers on tiny hand-computed fixtures (and a smoke run on the demo).

Orders fixture, as of 2024-03-31 (2024 is a leap year), base currency CNY, USD at 7.0 from 2024-02-10
(7.2 before):

=========  ==========  ======  ========  =========  ===========================================
account    day         amount  currency  status     note
=========  ==========  ======  ========  =========  ===========================================
A1         2024-01-01  100     CNY       completed  two orders on one day: one purchase day (150)
A1         2024-01-01   50     CNY       completed
A1         2024-01-15  200     CNY       completed
A1         2024-02-12   10     USD       completed  7.0 -> 70 CNY
A1         2024-03-01  999     CNY       cancelled  ignored, counted as cancelled
A2         2024-02-01  300     CNY       (empty)    no status counts as completed
A3         2024-03-01   40     CNY       completed
A3         2024-03-29   60     CNY       completed
A3         2024-04-05  500     CNY       completed  after the as-of day
A4         2024-01-10   50     CNY       completed
A4         2024-03-03   25     CNY       completed
(none)     2024-01-20   80     CNY       completed  no customer id
=========  ==========  ======  ========  =========  ===========================================

By hand (lifetimes' definitions, daily purchases; days then / 7 for weeks):

* A1: purchase days 01-01 (150), 01-15 (200), 02-12 (70): frequency 2, recency 42 d, T 90 d,
  monetary (200 + 70) / 2 = 135, orders 4, revenue 420.
* A2: frequency 0, recency 0, T 59 d (Feb has 29 days), monetary 0, orders 1, revenue 300.
* A3: frequency 1, recency 28 d, T 30 d, monetary 60, orders 2, revenue 100.
* A4: frequency 1, recency 53 d (21 + 29 + 3), T 81 d (21 + 29 + 31), monetary 25, orders 2, revenue 75.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from crmlib import customers as cu
from crmlib.customers.rfm import quintile_score, score
from crmlib.errors import ConfigError, CurrencyError

D = dt.date
AS_OF = D(2024, 3, 31)


def _orders(rows):
    return pl.DataFrame(
        [{"order_id": f"O{i}", "account_id": a, "ordered_at": dt.datetime(*d, 10, 0), "amount": amt, "currency": cur,
          "status": st} for i, (a, d, amt, cur, st) in enumerate(rows)],
        schema={"order_id": pl.String, "account_id": pl.String, "ordered_at": pl.Datetime("us"),
                "amount": pl.Float64, "currency": pl.String, "status": pl.String},
    )


ORDERS = _orders([
    ("A1", (2024, 1, 1), 100.0, "CNY", "completed"),
    ("A1", (2024, 1, 1), 50.0, "CNY", "completed"),
    ("A1", (2024, 1, 15), 200.0, "CNY", "completed"),
    ("A1", (2024, 2, 12), 10.0, "USD", "completed"),
    ("A1", (2024, 3, 1), 999.0, "CNY", "cancelled"),
    ("A2", (2024, 2, 1), 300.0, "CNY", None),
    ("A3", (2024, 3, 1), 40.0, "CNY", "completed"),
    ("A3", (2024, 3, 29), 60.0, "CNY", "completed"),
    ("A3", (2024, 4, 5), 500.0, "CNY", "completed"),
    ("A4", (2024, 1, 10), 50.0, "CNY", "completed"),
    ("A4", (2024, 3, 3), 25.0, "CNY", "completed"),
    (None, (2024, 1, 20), 80.0, "CNY", "completed"),
])
FX = pl.DataFrame({"date": [D(2024, 1, 1), D(2024, 2, 10)], "currency": ["USD", "USD"], "rate_to_base": [7.2, 7.0]})


@pytest.fixture
def data():
    return cu.load({"orders": ORDERS, "fx_rates": FX}, as_of=AS_OF, base_currency="CNY")


# ---------------------------------------------------------------------------------------------------
# Customer summary
# ---------------------------------------------------------------------------------------------------
def test_customer_summary_by_hand_in_days(data):
    s = cu.customer_summary(data.orders, AS_OF, "D", fx_rates=FX, base_currency="CNY").sort("account_id")
    assert s.get_column("account_id").to_list() == ["A1", "A2", "A3", "A4"]
    assert s.get_column("frequency").to_list() == [2, 0, 1, 1]
    assert s.get_column("recency").to_list() == [42.0, 0.0, 28.0, 53.0]
    assert s.get_column("T").to_list() == [90.0, 59.0, 30.0, 81.0]
    assert s.get_column("monetary").to_list() == pytest.approx([135.0, 0.0, 60.0, 25.0])
    assert s.get_column("orders").to_list() == [4, 1, 2, 2]
    assert s.get_column("revenue").to_list() == pytest.approx([420.0, 300.0, 100.0, 75.0])
    assert s.get_column("first_order").to_list() == [D(2024, 1, 1), D(2024, 2, 1), D(2024, 3, 1), D(2024, 1, 10)]


def test_customer_summary_in_weeks_and_from_customer_data(data):
    s = cu.customer_summary(data, None, "W").sort("account_id")  # CustomerData: its as-of, rates, base currency
    assert s.get_column("recency").to_list() == pytest.approx([6.0, 0.0, 4.0, 53 / 7])
    assert s.get_column("T").to_list() == pytest.approx([90 / 7, 59 / 7, 30 / 7, 81 / 7])


def test_several_orders_on_one_day_are_one_purchase_day():
    # B1: 01-01 (10), 01-05 (20 + 30): one repeat purchase day worth 50. B2: 01-02 (5 + 5), 01-09 (7).
    orders = _orders([("B1", (2024, 1, 1), 10.0, "CNY", None), ("B1", (2024, 1, 5), 20.0, "CNY", None),
                      ("B1", (2024, 1, 5), 30.0, "CNY", None), ("B2", (2024, 1, 2), 5.0, "CNY", None),
                      ("B2", (2024, 1, 2), 5.0, "CNY", None), ("B2", (2024, 1, 9), 7.0, "CNY", None)])
    s = cu.customer_summary(orders, "2024-01-10", "D", base_currency="CNY").sort("account_id")
    assert s.get_column("frequency").to_list() == [1, 1]
    assert s.get_column("recency").to_list() == [4.0, 7.0]
    assert s.get_column("monetary").to_list() == [50.0, 7.0]
    assert s.get_column("orders").to_list() == [3, 3]


def test_calibration_holdout_split_by_hand(data):
    # Calibration up to 2024-02-01: A1 has 01-01 and 01-15 (frequency 1, recency 14 d, T 31 d, monetary 200);
    # A2 01-02 only (T 0); A4 01-10 (T 22 d); A3 starts later and is left out. Holdout (02-01, 03-31], 59 days:
    # A1 one purchase day (70), A4 one (25), A2 none.
    s = cu.customer_summary(data.orders, AS_OF, "D", calibration_end="2024-02-01", fx_rates=FX,
                            base_currency="CNY").sort("account_id")
    assert s.get_column("account_id").to_list() == ["A1", "A2", "A4"]
    assert s.get_column("frequency").to_list() == [1, 0, 0]
    assert s.get_column("recency").to_list() == [14.0, 0.0, 0.0]
    assert s.get_column("T").to_list() == [31.0, 0.0, 22.0]
    assert s.get_column("monetary").to_list() == [200.0, 0.0, 0.0]
    assert s.get_column("frequency_holdout").to_list() == [1, 0, 1]
    assert s.get_column("monetary_holdout").to_list() == pytest.approx([70.0, 0.0, 25.0])
    assert s.get_column("duration_holdout").to_list() == [59.0, 59.0, 59.0]
    with pytest.raises(ConfigError, match="must be before as_of"):
        cu.customer_summary(data.orders, AS_OF, "D", calibration_end=AS_OF, fx_rates=FX)


def test_holdout_check_buckets():
    summary = pl.DataFrame({"frequency": [0, 0, 1, 3, 9], "recency": [0.0, 0.0, 1.0, 2.0, 3.0], "T": [5.0] * 5,
                            "frequency_holdout": [0, 1, 2, 2, 4], "duration_holdout": [4.0] * 5})

    class Half:  # predicts half a purchase per calibration purchase, plus 0.5
        def conditional_expected_purchases(self, t, frequency, recency, T):
            return 0.5 + 0.5 * frequency

    out = cu.holdout_check(summary, Half(), max_frequency=3)
    assert out.get_column("bucket").to_list() == ["0", "1", "3+"]
    assert out.get_column("customers").to_list() == [2, 1, 2]
    assert out.get_column("actual").to_list() == [0.5, 2.0, 3.0]
    assert out.get_column("predicted").to_list() == [0.5, 1.0, (2.0 + 5.0) / 2]


def test_cancellations_and_missing_customers_are_counted_not_used(data):
    ex = cu.order_exclusions(data)
    counts = dict(zip(ex.get_column("reason"), ex.get_column("orders"), strict=True))
    assert counts == {"used": 9, "cancelled": 1, "no customer id": 1, "no date or amount": 0,
                      "after the as-of day": 1}
    assert ex.get_column("share").sum() == pytest.approx(1.0)
    s = cu.customer_summary(data, None, "D")
    assert s.get_column("revenue").sum() == pytest.approx(895.0)  # 999 cancelled, 80 anonymous, 500 later: out
    assert "A1" in s.get_column("account_id").to_list() and s.height == 4


def test_default_as_of_is_the_last_order_that_counts():
    d = cu.load({"orders": ORDERS, "fx_rates": FX}, base_currency="CNY")
    assert d.as_of == D(2024, 4, 5)
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        cu.load({"orders": ORDERS}, as_of="31/03/2024")


def test_amount_without_exchange_rate_is_an_error():
    orders = _orders([("A1", (2024, 1, 5), 10.0, "EUR", "completed"), ("A1", (2024, 1, 9), 10.0, "USD", "completed")])
    with pytest.raises(CurrencyError, match=r"orders: 1 row in EUR dated 2024-01-05 to 2024-01-05") as err:
        cu.customer_summary(orders, AS_OF, "D", fx_rates=FX, base_currency="CNY")
    assert "USD" not in str(err.value).split("\n")[1]
    with pytest.raises(CurrencyError, match="2 rows in USD"):  # before the first USD rate
        cu.customer_summary(_orders([("A1", (2023, 12, 5), 1.0, "USD", None), ("A2", (2023, 12, 6), 1.0, "USD", None)]),
                            AS_OF, "D", fx_rates=FX, base_currency="CNY")


def test_segment_filter_keeps_that_segments_accounts():
    accounts = pl.DataFrame({"account_id": ["A1", "A2", "A3", "A4"], "name": ["a", "b", "c", "d"],
                             "segment": ["smb", "enterprise", "smb", "smb"],
                             "created_at": [dt.datetime(2023, 1, 1)] * 4})
    d = cu.load({"orders": ORDERS, "fx_rates": FX, "accounts": accounts}, as_of=AS_OF, segment="enterprise",
                base_currency="CNY")
    assert cu.customer_summary(d, None, "D").get_column("account_id").to_list() == ["A2"]
    with pytest.raises(ConfigError, match="not one of enterprise, mid_market, smb"):
        cu.load({"orders": ORDERS, "accounts": accounts}, segment="gold")


# ---------------------------------------------------------------------------------------------------
# RFM
# ---------------------------------------------------------------------------------------------------
def test_quintile_scores_by_hand():
    f = pl.DataFrame({"v": [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]})
    assert f.select(quintile_score("v")).to_series().to_list() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert f.select(quintile_score("v", descending=True)).to_series().to_list() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # ties share the score of their group: 6 of 10 have one order (nobody below them: score 1), then
    # 2 orders (6 below: 1 + floor(3.0) = 4), 5 orders (8 below: 1 + floor(4.0) = 5)
    ties = pl.DataFrame({"v": [1, 1, 1, 1, 1, 1, 2, 2, 5, 5]})
    assert ties.select(quintile_score("v")).to_series().to_list() == [1] * 6 + [4, 4, 5, 5]


def test_rfm_scores_and_segments_by_hand(data):
    # recency_days A1 48 (02-12), A2 59, A3 2, A4 28; orders 4, 1, 2, 2; money 420, 300, 100, 75.
    # Scores 1 + floor(5 * worse / 4): R: A2 1, A1 2, A4 3, A3 4; F: A2 1, A3/A4 2 (tie), A1 4;
    # M: A4 1, A3 2, A2 3, A1 4; FM = round_half_up((F + M) / 2): A1 4, A2 2, A3 2, A4 2.
    r = cu.rfm(data)
    assert r.get_column("account_id").to_list() == ["A1", "A2", "A3", "A4"]
    assert r.get_column("recency_days").to_list() == [48, 59, 2, 28]
    assert r.get_column("frequency").to_list() == [4, 1, 2, 2]
    assert r.get_column("monetary").to_list() == pytest.approx([420.0, 300.0, 100.0, 75.0])
    assert r.get_column("r_score").to_list() == [2, 1, 4, 3]
    assert r.get_column("f_score").to_list() == [4, 1, 2, 2]
    assert r.get_column("m_score").to_list() == [4, 3, 2, 1]
    assert r.get_column("fm_score").to_list() == [4, 2, 2, 2]
    assert r.get_column("segment").cast(pl.String).to_list() == ["at risk", "lost", "potential loyalist", "hibernating"]
    seg = cu.rfm_segments(r)
    assert seg.get_column("segment").cast(pl.String).to_list() == list(cu.SEGMENTS)
    row = seg.filter(pl.col("segment") == "at risk").row(0, named=True)
    assert (row["customers"], row["revenue"], row["customer_share"]) == (1, 420.0, 0.25)
    assert row["revenue_share"] == pytest.approx(420 / 895)
    assert seg.get_column("customers").sum() == 4
    grid = cu.rfm_grid(r)
    assert grid.height == 25 and grid.get_column("customers").sum() == 4


@pytest.mark.parametrize(
    ("r", "fm", "segment"),
    [(5, 5, "champions"), (4, 4, "champions"), (5, 3, "loyal"), (3, 3, "loyal"), (3, 5, "loyal"),
     (4, 2, "potential loyalist"), (5, 1, "new"), (3, 1, "hibernating"), (2, 2, "hibernating"),
     (2, 3, "at risk"), (1, 4, "at risk"), (2, 5, "can't lose"), (1, 5, "can't lose"), (1, 1, "lost"),
     (1, 2, "lost")],
)
def test_segment_grid(r, fm, segment):
    frame = pl.DataFrame({"recency_days": [0], "frequency": [1], "monetary": [1.0]})
    got = score(frame).with_columns(pl.lit(r, pl.Int8).alias("r_score"), pl.lit(fm, pl.Int8).alias("fm_score"))
    from crmlib.customers.rfm import segment_expr

    assert got.select(segment_expr().cast(pl.String)).item() == segment


# ---------------------------------------------------------------------------------------------------
# Order cohorts
# ---------------------------------------------------------------------------------------------------
def test_retention_matrix_by_hand(data):
    # Cohort Jan: A1 (01-01) and A4 (01-10), 400 in January; February: A1 (70); March: A4 (25).
    # Cohort Feb: A2 (300), nobody in March. Cohort Mar: A3 (100).
    m = cu.retention_matrix(data)
    jan = m.filter(pl.col("cohort") == D(2024, 1, 1))
    assert jan.get_column("months_since").to_list() == [0, 1, 2]
    assert jan.get_column("customers").to_list() == [2, 1, 1]
    assert jan.get_column("revenue").to_list() == pytest.approx([400.0, 70.0, 25.0])
    assert jan.get_column("retention").to_list() == [1.0, 0.5, 0.5]
    assert jan.get_column("revenue_retention").to_list() == pytest.approx([1.0, 0.175, 0.0625])
    feb = m.filter(pl.col("cohort") == D(2024, 2, 1))
    assert feb.get_column("customers").to_list() == [1, 0]  # a month with nobody is a 0, not a gap
    assert feb.get_column("retention").to_list() == [1.0, 0.0]
    assert m.filter(pl.col("cohort") == D(2024, 3, 1)).get_column("cohort_size").to_list() == [1]


# ---------------------------------------------------------------------------------------------------
# Subscriptions: churn, GRR, NRR
# ---------------------------------------------------------------------------------------------------
SUBS = pl.DataFrame({
    "subscription_id": ["S1", "S2", "S3", "S4", "S5", "S6"],
    "account_id": ["X", "X", "Y", "Z", "Z", "W"],
    "product_id": ["P"] * 6,
    "start_date": [D(2023, 12, 1), D(2024, 2, 10), D(2023, 11, 15), D(2023, 12, 20), D(2024, 3, 5), D(2024, 1, 15)],
    "end_date": [None, None, D(2024, 2, 20), D(2024, 3, 5), None, None],
    "mrr": [100.0, 50.0, 200.0, 80.0, 60.0, 30.0],
    "currency": ["CNY"] * 5 + ["USD"],
})
SUB_FX = pl.DataFrame({"date": [D(2024, 1, 1), D(2024, 2, 15)], "currency": ["USD", "USD"], "rate_to_base": [7.0, 7.5]})


def test_grr_nrr_and_churn_by_hand():
    """Active at the start of day d: start_date < d and (no end_date or end_date >= d); MRR at the rate of the
    month's first day.

    January: open X 100, Y 200, Z 80 = 380; on Feb 1 also W (30 USD x 7.0 = 210): new 210; GRR = NRR = 1.
    February: open 590 (W at 7.0); on Mar 1: X 150 (+50), Y 0 (ended Feb 20), Z 80, W 210.
      GRR = (100 + 0 + 80 + 210) / 590, NRR = (150 + 0 + 80 + 210) / 590, logo churn 1/4, subscription churn 1/4.
    March: open X 150, Z 80, W 30 x 7.5 = 225 -> 455; on Apr 1: X 150, Z 60 (S4 ended Mar 5, S5 started), W 225.
      contraction 20; GRR = NRR = 435 / 455; logo churn 0; subscription churn 1/4 (S4).
    November 2023: nothing open -> rates null (no division by zero).
    """
    d = cu.load({"orders": ORDERS, "subscriptions": SUBS, "fx_rates": SUB_FX}, as_of=AS_OF, base_currency="CNY")
    out = cu.subscription_retention(d)
    assert out.get_column("month").to_list() == [D(2023, 11, 1), D(2023, 12, 1), D(2024, 1, 1), D(2024, 2, 1),
                                                 D(2024, 3, 1)]
    nov, dec, jan, feb, mar = out.iter_rows(named=True)
    assert nov["opening_mrr"] == 0 and nov["grr"] is None and nov["nrr"] is None and nov["logo_churn_rate"] is None
    assert nov["new_mrr"] == 200.0
    assert (dec["opening_mrr"], dec["new_mrr"], dec["nrr"]) == (200.0, 180.0, 1.0)
    assert (jan["opening_mrr"], jan["new_mrr"], jan["closing_mrr"], jan["grr"], jan["nrr"]) == (380.0, 210.0, 590.0, 1.0, 1.0)
    assert feb["opening_mrr"] == pytest.approx(590.0)
    assert (feb["expansion_mrr"], feb["contraction_mrr"], feb["churned_mrr"]) == (50.0, 0.0, 200.0)
    assert feb["grr"] == pytest.approx(390 / 590)
    assert feb["nrr"] == pytest.approx(440 / 590)
    assert (feb["accounts_open"], feb["accounts_churned"], feb["logo_churn_rate"]) == (4, 1, 0.25)
    assert (feb["subscriptions_open"], feb["subscriptions_churned"], feb["subscription_churn_rate"]) == (4, 1, 0.25)
    assert mar["opening_mrr"] == pytest.approx(455.0)
    assert mar["contraction_mrr"] == pytest.approx(20.0)
    assert mar["grr"] == pytest.approx(435 / 455) and mar["nrr"] == pytest.approx(435 / 455)
    assert (mar["logo_churn_rate"], mar["subscription_churn_rate"]) == (0.0, 0.25)
    for row in (jan, feb, mar):  # the MRR bridge adds up
        assert row["opening_mrr"] + row["new_mrr"] + row["expansion_mrr"] - row["contraction_mrr"] - row[
            "churned_mrr"] == pytest.approx(row["closing_mrr"])


def test_subscription_retention_without_subscriptions(data):
    out = cu.subscription_retention(data)
    assert out.height == 0 and "nrr" in out.columns


# ---------------------------------------------------------------------------------------------------
# Concentration
# ---------------------------------------------------------------------------------------------------
def test_pareto_share_and_abc_by_hand():
    # revenue 50, 20, 10, 10, 5, 5 (total 100): top 20 % = ceil(1.2) = 2 customers = 70 %.
    # ABC by the revenue ranked above: 0, .5, .7 -> A; .8, .9 -> B; .95 -> C.
    f = pl.DataFrame({"account_id": ["a", "b", "c", "d", "e", "f"], "revenue": [10.0, 5.0, 50.0, 20.0, 5.0, 10.0]})
    from crmlib.customers.concentration import pareto_from_revenue

    p = pareto_from_revenue(f)
    assert p.get_column("account_id").to_list() == ["c", "d", "a", "f", "b", "e"]  # ties by account_id
    assert p.get_column("revenue_share").to_list() == pytest.approx([0.5, 0.7, 0.8, 0.9, 0.95, 1.0])
    assert p.get_column("abc").to_list() == ["A", "A", "A", "B", "B", "C"]
    assert cu.top_share(p, 0.2) == pytest.approx(0.7)
    assert cu.top_share(p, 0.5) == pytest.approx(0.8)
    assert cu.top_share(p, 1.0) == pytest.approx(1.0)
    c = cu.concentration(p)
    assert c.get_column("customers").to_list() == [1, 1, 1, 2, 3]
    abc = cu.abc_summary(p)
    assert abc.get_column("customers").to_list() == [3, 2, 1]
    assert abc.get_column("revenue_share").to_list() == pytest.approx([0.8, 0.15, 0.05])
    with pytest.raises(ConfigError, match="fraction of customers"):
        cu.top_share(p, 20)


def test_pareto_on_orders(data):
    p = cu.pareto(data)  # 420, 300, 100, 75 of 895
    assert p.get_column("account_id").to_list() == ["A1", "A2", "A3", "A4"]
    assert p.get_column("abc").to_list() == ["A", "A", "B", "B"]
    assert cu.top_share(p, 0.25) == pytest.approx(420 / 895)


# ---------------------------------------------------------------------------------------------------
# Watchlist (a hand-made CustomerValue) and the demo
# ---------------------------------------------------------------------------------------------------
def test_watchlist_flags_slipping_top_customers():
    customers = pl.DataFrame({
        "account_id": ["K1", "K2", "K3", "K4"],
        "frequency": [4, 4, 4, 0], "recency": [8.0, 8.0, 8.0, 0.0], "T": [10.0, 20.0, 10.0, 10.0],  # weeks
        "p_alive": [0.9, 0.8, 0.3, 1.0], "clv": [900.0, 800.0, 30.0, 50.0],
        "value_at_stake": [1000.0, 1000.0, 100.0, 50.0], "value_tier": ["top", "top", "low", "middle"],
        "last_order": [D(2024, 3, 17)] * 4,
    })
    value = cu.CustomerValue(customers, None, None, AS_OF, 12, 0.01, 1.0, "W", "CNY")
    accounts = pl.DataFrame({"account_id": ["K1", "K2", "K3", "K4"], "name": ["Kay", "Kim", "Ko", "Ku"],
                             "segment": ["smb"] * 4, "owner_id": ["U1", "U2", "U1", None],
                             "created_at": [dt.datetime(2023, 1, 1)] * 4})
    users = pl.DataFrame({"user_id": ["U1", "U2"], "name": ["Li Na", "Wang Wei"], "role": ["sales_rep"] * 2,
                          "is_active": [True, True]})
    acts = pl.DataFrame({"activity_id": ["a", "b", "c"], "type": ["call"] * 3, "owner_id": ["U2"] * 3,
                         "occurred_at": [dt.datetime(2024, 2, 1), dt.datetime(2024, 3, 2), dt.datetime(2024, 4, 9)],
                         "account_id": ["K2", "K2", "K2"]})
    d = cu.load({"orders": ORDERS, "accounts": accounts, "users": users, "activities": acts}, as_of=AS_OF,
                base_currency="CNY")
    # K2: usual gap 8 weeks / 4 = 14 days, now 12 weeks = 84 days since the last purchase: 6x -> flagged.
    # K1: gap 2 weeks = 14 days = 1x, P(alive) 0.9 -> not flagged. K3 is slipping but not valuable.
    w = cu.watchlist(value, d, p_alive_below=0.5, gap_ratio=2.0)
    assert w.get_column("account_id").to_list() == ["K2"]
    row = w.row(0, named=True)
    assert (row["account"], row["owner"], row["reason"]) == ("Kim", "Wang Wei", "gap 6.0x the usual")
    assert (row["usual_gap_days"], row["days_since_last_order"]) == (14.0, 84.0)
    assert row["last_activity"] == dt.datetime(2024, 3, 2)  # the April call is after the as-of day
    w2 = cu.watchlist(value, d, p_alive_below=0.95, gap_ratio=10.0)
    assert w2.get_column("account_id").to_list() == ["K1", "K2"]
    assert w2.get_column("reason").to_list() == ["P(alive) 0.9 < 0.95", "P(alive) 0.8 < 0.95"]


def test_customer_value_on_small_demo(demo_frames):
    d = cu.load(demo_frames)
    v = cu.customer_value(d, horizon=6, discount_rate=0.01, margin=0.3)
    c = v.customers
    assert c.height > 20
    assert v.bgnbd is not None and c.get_column("clv").null_count() == 0
    assert (c.get_column("clv") >= 0).all() and c.get_column("p_alive").is_between(0, 1).all()
    assert set(c.get_column("value_tier").unique()) <= {"top", "middle", "low"}
    assert v.parameters().height == 7
    grid = cu.p_alive_grid(v)
    assert grid.get_column("p_alive").is_between(0, 1).all()
    assert cu.holdout_validation(d).get_column("customers").sum() > 0
    assert cu.watchlist(v, d).columns[:4] == ["account_id", "account", "segment", "owner"]
    assert "extra_value" in cu.rising_accounts(v, d).columns
    with pytest.raises(ConfigError, match="margin"):
        cu.customer_value(d, margin=30)


def test_customer_value_without_repeat_purchases_still_answers():
    orders = _orders([("A1", (2024, 1, 1), 10.0, "CNY", None), ("A2", (2024, 2, 1), 20.0, "CNY", None)])
    v = cu.customer_value(cu.load({"orders": orders}, as_of=AS_OF, base_currency="CNY"))
    assert v.bgnbd is None and v.gamma_gamma is None
    assert any("no customer has a repeat purchase" in n for n in v.notes)
    assert v.customers.get_column("clv").null_count() == 2
    assert cu.p_alive_grid(v).height == 0


# ---------------------------------------------------------------------------------------------------
# Charts and tables: tidy frame in, figure/table out, empty input included
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_chart_and_table_builders(demo_frames, lang):
    import plotly.graph_objects as go
    from great_tables import GT

    from crmlib import charts_customers as cc

    d = cu.load(demo_frames)
    v = cu.customer_value(d, horizon=6, margin=0.3)
    r = cu.rfm(d)
    figures = {
        "rfm_segments": cc.plot_rfm_segments(cu.rfm_segments(r), lang),
        "rfm_grid": cc.plot_rfm_grid(cu.rfm_grid(r), lang),
        "clv": cc.plot_clv_distribution(v.customers, lang, currency="CNY"),
        "p_alive": cc.plot_p_alive(cu.p_alive_grid(v), lang),
        "holdout": cc.plot_calibration_holdout(cu.holdout_validation(d), lang),
        "cohorts": cc.plot_cohort_heatmap(cu.retention_matrix(d), lang),
        "nrr": cc.plot_revenue_retention(cu.subscription_retention(d), lang),
        "pareto": cc.plot_pareto(cu.pareto(d), lang),
    }
    for name, fig in figures.items():
        assert isinstance(fig, go.Figure) and len(fig.data) >= 1, name
    assert figures["rfm_segments"].layout.title.text == cc.t("rfm_segments", lang)
    tables = [cc.fmt_order_exclusions(cu.order_exclusions(d), lang), cc.fmt_parameters(v.parameters(), lang),
              cc.fmt_notes(v.notes, lang), cc.fmt_top_customers(v.top(5), lang),
              cc.fmt_watchlist(cu.watchlist(v, d), lang), cc.fmt_rising(cu.rising_accounts(v, d), lang)]
    for table in tables:
        assert isinstance(table, GT) and table.as_raw_html()
    # empty inputs give a "no data" figure, not an error
    empty = cc.plot_pareto(cu.pareto(d).head(0), lang)
    assert empty.layout.annotations[0].text == cc.t("no_data", lang)
    assert cc.plot_p_alive(cu.p_alive_grid(v).head(0), lang).layout.annotations
    with pytest.raises(ConfigError, match="metric"):
        cc.plot_cohort_heatmap(cu.retention_matrix(d), lang, metric="money")


def test_labels_have_both_languages():
    from crmlib.charts_customers import LABELS

    assert all(set(entry) == {"en", "zh"} and all(entry.values()) for entry in LABELS.values())
