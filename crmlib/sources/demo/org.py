"""The organisation (teams, users) and the product catalog.

Their shape does not depend on ``scale``: scale multiplies the volume of business (accounts, leads,
deals, cases, orders), so at scale s every rep carries s times the book of business. This keeps the
targets cascade and the per-rep / per-team planted truths meaningful at every scale.
"""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import polars as pl

from ._base import person_names, rng_for

SEGMENTS = ("enterprise", "mid_market", "smb")
REGIONS = ("North", "East", "South", "West")

# team_id, name, department, home region, segment covered, regions covered, number of reps
SALES_TEAMS = (
    ("T01", "Enterprise North", "Enterprise Sales", "North", "enterprise", ("North", "East"), 4),
    ("T02", "Enterprise South", "Enterprise Sales", "South", "enterprise", ("South", "West"), 4),
    ("T03", "Commercial North", "Commercial Sales", "North", "mid_market", ("North",), 5),
    ("T04", "Commercial East", "Commercial Sales", "East", "mid_market", ("East",), 7),
    ("T05", "Commercial South", "Commercial Sales", "South", "mid_market", ("South",), 5),
    ("T06", "Commercial West", "Commercial Sales", "West", "mid_market", ("West",), 5),
    ("T07", "Inside Sales East", "Inside Sales", "East", "smb", ("North", "East"), 11),
    ("T08", "Inside Sales West", "Inside Sales", "West", "smb", ("South", "West"), 9),
)
SALES_DEPARTMENTS = ("Enterprise Sales", "Commercial Sales", "Inside Sales")
SERVICE_DEPARTMENT = "Customer Service"
# team_id, name, home region (None: all regions), number of agents
SERVICE_TEAMS = (
    ("T09", "Service Desk North", "North", 8),  # general cases from North and East
    ("T10", "Service Desk South", "South", 8),  # general cases from South and West
    ("T11", "Technical Support", None, 8),  # technical and bug cases (not enterprise)
    ("T12", "Key Accounts Care", None, 6),  # every case of an enterprise account
)
MARKETING_TEAM = ("T13", "Marketing", "Marketing", 5)

# --------------------------------------------------------------------------------------------
# PLANTED TRUTH 2 - rep skill. Every rep has a win-rate multiplier: most are drawn log-normally
# around 1 (sigma 0.12, clipped to [0.8, 1.2]); one rep, drawn at random from the seed, is the star
# (BEST_SKILL) and another one the weakest (WORST_SKILL). The win probability of a deal is
# min(0.95, base rate of its type x skill of its owner) (see sales.py), and base rates do not depend
# on segment or region, so a rep's raw win rate is an unbiased view of the skill.
# truth(scale, seed)["rep_skill"] names the two reps.
# --------------------------------------------------------------------------------------------
SKILL_SIGMA = 0.12
SKILL_CLIP = (0.8, 1.2)
BEST_SKILL = 2.0
WORST_SKILL = 0.45

# product_id, name, family, list price (CNY), is_subscription
PRODUCTS = (
    ("P01", "Cloud Platform Standard", "Platform", 120_000.0, True),
    ("P02", "Cloud Platform Enterprise", "Platform", 480_000.0, True),
    ("P03", "Analytics Add-on", "Analytics", 60_000.0, True),
    ("P04", "AI Assistant", "Analytics", 90_000.0, True),
    ("P05", "Premium Support", "Support", 36_000.0, True),
    ("P06", "Implementation Services", "Services", 150_000.0, False),
    ("P07", "Training Package", "Services", 20_000.0, False),
    ("P08", "Data Migration", "Services", 50_000.0, False),
    ("P09", "IoT Gateway", "Hardware", 8_000.0, False),
    ("P10", "Consumables Pack", "Consumables", 1_200.0, False),  # web-shop items (orders)
    ("P11", "Extra Storage 1TB", "Add-ons", 3_000.0, False),
    ("P12", "Extra Seats (10)", "Add-ons", 6_000.0, False),
)
SUBSCRIPTION_PRODUCTS = np.array([i for i, p in enumerate(PRODUCTS) if p[4]])
WEBSHOP_PRODUCTS = np.array([8, 9, 10, 11])  # P09..P12


def build(seed: int) -> tuple[SimpleNamespace, dict[str, pl.DataFrame]]:
    """Teams, users and products, plus arrays the other generators need (``org``)."""
    rng = rng_for(seed, "users")
    teams: list[dict] = []
    users: list[dict] = []

    def add_user(role, team_id, department, region, manager, hired):
        users.append({"role": role, "team_id": team_id, "department": department, "region": region,
                      "manager": manager, "hired_at": hired})
        return len(users) - 1

    def hired() -> date:
        return date.fromordinal(date(2015, 1, 1).toordinal() + int(rng.integers(0, 8 * 365)))

    ceo = add_user("executive", None, "Executive", None, None, date(2014, 3, 1))
    vp_sales = add_user("executive", None, "Executive", None, ceo, date(2016, 5, 9))
    heads = {d: add_user("sales_manager", None, d, None, vp_sales, hired()) for d in SALES_DEPARTMENTS}
    rep_team, rep_users = [], []
    for ti, (tid, name, dept, region, _seg, _cov, n_reps) in enumerate(SALES_TEAMS):
        teams.append({"team_id": tid, "name": name, "department": dept, "function": "sales", "region": region})
        mgr = add_user("sales_manager", tid, dept, region, heads[dept], hired())
        for _ in range(n_reps):
            rep_users.append(add_user("sales_rep", tid, dept, region, mgr, hired()))
            rep_team.append(ti)
    svc_head = add_user("service_manager", None, SERVICE_DEPARTMENT, None, ceo, hired())
    agent_team, agent_users = [], []
    for si, (tid, name, region, n_agents) in enumerate(SERVICE_TEAMS):
        teams.append({"team_id": tid, "name": name, "department": SERVICE_DEPARTMENT, "function": "service",
                      "region": region})
        mgr = add_user("service_manager", tid, SERVICE_DEPARTMENT, region, svc_head, hired())
        for _ in range(n_agents):
            agent_users.append(add_user("service_agent", tid, SERVICE_DEPARTMENT, region, mgr, hired()))
            agent_team.append(si)
    tid, name, dept, n_mkt = MARKETING_TEAM
    teams.append({"team_id": tid, "name": name, "department": dept, "function": "marketing", "region": None})
    mkt_head = add_user("marketer", tid, dept, None, ceo, hired())
    marketers = [mkt_head] + [add_user("marketer", tid, dept, None, mkt_head, hired()) for _ in range(n_mkt)]

    n = len(users)
    names, emails = person_names(rng, n)
    user_ids = [f"U{i + 1:04d}" for i in range(n)]
    users_df = pl.DataFrame(
        {
            "user_id": user_ids,
            "name": names,
            "email": emails + pl.Series([f"{i + 1}@demo-crm.example" for i in range(n)]),
            "role": [u["role"] for u in users],
            "team_id": [u["team_id"] for u in users],
            "department": [u["department"] for u in users],
            "region": [u["region"] for u in users],
            "manager_id": [user_ids[u["manager"]] if u["manager"] is not None else None for u in users],
            "hired_at": [u["hired_at"] for u in users],
            "is_active": [True] * n,
        }
    )
    teams_df = pl.DataFrame(teams).with_columns(parent_team_id=pl.lit(None, pl.String))
    products_df = pl.DataFrame(
        {
            "product_id": [p[0] for p in PRODUCTS],
            "name": [p[1] for p in PRODUCTS],
            "family": [p[2] for p in PRODUCTS],
            "list_price": [p[3] for p in PRODUCTS],
            "currency": ["CNY"] * len(PRODUCTS),
            "is_subscription": [p[4] for p in PRODUCTS],
        }
    )

    # Rep skill (PLANTED TRUTH 2, see above).
    rep_users_a = np.asarray(rep_users)
    skill = np.clip(np.exp(rng.normal(0.0, SKILL_SIGMA, len(rep_users))), *SKILL_CLIP)
    best, worst = rng.choice(len(rep_users), 2, replace=False)
    skill[best], skill[worst] = BEST_SKILL, WORST_SKILL

    # Which sales team covers (segment, region): team index.
    cover = np.zeros((len(SEGMENTS), len(REGIONS)), dtype=np.int64)
    for ti, (*_, seg, covered, _n) in enumerate(SALES_TEAMS):
        for r in covered:
            cover[SEGMENTS.index(seg), REGIONS.index(r)] = ti
    rep_team_a = np.asarray(rep_team)
    team_rep_start = np.searchsorted(rep_team_a, np.arange(len(SALES_TEAMS)))
    team_rep_count = np.bincount(rep_team_a, minlength=len(SALES_TEAMS))
    agent_team_a = np.asarray(agent_team)

    org = SimpleNamespace(
        user_ids=np.asarray(user_ids, dtype=object),
        rep_user=rep_users_a,  # user index of each rep
        rep_team=rep_team_a,  # sales team index of each rep (reps sorted by team)
        rep_skill=skill,
        best_rep=int(rep_users_a[best]),
        worst_rep=int(rep_users_a[worst]),
        team_rep_start=team_rep_start,
        team_rep_count=team_rep_count,
        cover=cover,
        agent_user=np.asarray(agent_users),
        agent_team=agent_team_a,
        team_agent_start=np.searchsorted(agent_team_a, np.arange(len(SERVICE_TEAMS))),
        team_agent_count=np.bincount(agent_team_a, minlength=len(SERVICE_TEAMS)),
        marketers=np.asarray(marketers),
    )
    return org, {"teams": teams_df, "users": users_df, "products": products_df}


def pick_rep(rng: np.random.Generator, org: SimpleNamespace, team: np.ndarray) -> np.ndarray:
    """A random rep (user index) of each given sales team index."""
    k = org.team_rep_start[team] + np.floor(rng.random(len(team)) * org.team_rep_count[team]).astype(np.int64)
    return org.rep_user[k]


def rep_index_of_user(org: SimpleNamespace, user: np.ndarray) -> np.ndarray:
    """Position in ``org.rep_user`` of each user index (reps only)."""
    lookup = np.full(len(org.user_ids), -1, dtype=np.int64)
    lookup[org.rep_user] = np.arange(len(org.rep_user))
    return lookup[user]
