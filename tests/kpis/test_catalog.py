"""The KPI catalog: the shipped files load, wrong files say exactly what is wrong, user files extend it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

from crmlib import schema
from crmlib.errors import ConfigError
from crmlib.kpis import (
    CatalogError,
    ConversionKpi,
    CumulativeKpi,
    DerivedKpi,
    ExternalKpi,
    RatioKpi,
    default_catalog,
    load_catalog,
    problems_of,
)
from crmlib.kpis.expr import ExprError, expr_names, parse_expr
from crmlib.kpis.rules import RULES

FIXTURES = Path(__file__).parent / "fixtures"
DOCS = Path(__file__).parents[2] / "docs" / "kpis.md"
TARGET_KPIS = ("revenue", "won_deals", "new_leads", "sla_compliance", "csat")  # used by the demo targets


@pytest.fixture(scope="module")
def cat():
    return load_catalog(paths=[])


@pytest.fixture(autouse=True)
def _no_user_path(monkeypatch):
    monkeypatch.delenv("CRMLIB_KPI_PATH", raising=False)


# --------------------------------------------------------------------------------------------
# The shipped catalog
# --------------------------------------------------------------------------------------------
def test_shipped_catalog_loads_without_problems():
    assert problems_of(paths=[]) == []


def test_shipped_catalog_has_the_kpis_the_areas_and_targets_need(cat):
    assert cat.areas == ("sales", "marketing", "service", "customers")
    expected = {
        "sales": {
            "revenue",
            "won_deals",
            "lost_deals",
            "win_rate",
            "avg_deal_size",
            "new_opportunities",
            "pipeline_created",
            "open_pipeline",
            "revenue_ytd",
            "sales_cycle_days",
        },
        "marketing": {"new_leads", "mqls", "sqls", "lead_to_opportunity", "marketing_spend", "cost_per_lead"},
        "service": {"new_cases", "solved_cases", "csat", "nps", "sla_compliance"},
        "customers": {"orders", "order_revenue", "active_accounts"},
    }
    for area, names in expected.items():
        assert names <= {k.name for k in cat.list(area)}, area
    for name in TARGET_KPIS:
        assert name in cat


def test_every_kpi_has_english_and_chinese_texts(cat):
    for k in cat:
        assert k.label.en.strip() and k.label.zh.strip(), k.name
        assert re.search(r"[\u4e00-\u9fff]", k.label.zh), f"{k.name}: zh label has no Chinese: {k.label.zh}"
        assert k.formula is not None and k.formula.en and k.formula.zh, k.name
        assert k.description.en and re.search(r"[\u4e00-\u9fff]", k.description.zh), k.name
    for area in cat.areas:
        assert re.search(r"[\u4e00-\u9fff]", cat.area_label(area, "zh"))


def test_every_kpi_can_be_grouped_and_names_are_snake_case(cat):
    for k in cat:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", k.name)
        assert k.dimensions, f"{k.name} cannot be grouped by anything"
        assert set(k.dimensions) <= set(cat.dimensions)


def test_money_is_flagged_from_the_schema(cat):
    won = cat.measure("won_amount")
    assert won.money and won.currency_column == "currency" and won.unit == "currency"
    assert not cat.measure("won_count").money and cat.measure("won_count").unit == "count"
    assert cat.measure("spend_amount").money
    assert not cat.measure("ordering_accounts").money  # count_distinct of a key
    assert "fx_rates" in cat.tables_for("revenue") and "fx_rates" not in cat.tables_for("win_rate")


def test_measures_and_tables_resolve_through_derived_kpis(cat):
    assert [m.name for m in cat.measures_for("nps")] == ["nps_promoters", "nps_responses", "nps_detractors"]
    assert [m.name for m in cat.measures_for("avg_deal_size")] == ["won_amount", "won_count"]
    assert cat.tables_for("cost_per_lead") == ("marketing_spend", "leads", "fx_rates")
    assert cat.dependencies("nps") == ("promoter_share", "detractor_share", "nps")
    assert cat.tables_for("sla_compliance") == ("cases", "case_events")
    # a derived KPI can only be grouped by what all its parts can be grouped by
    assert cat.get("cost_per_lead").dimensions == ("channel", "campaign")


def test_kpi_types_carry_their_parameters(cat):
    win_rate = cat.get("win_rate")
    assert isinstance(win_rate, RatioKpi) and win_rate.range == (0.0, 1.0)
    assert (win_rate.numerator, win_rate.denominator) == ("won_count", "closed_count")
    ytd = cat.get("revenue_ytd")
    assert isinstance(ytd, CumulativeKpi) and ytd.window.to_date == "year"
    conv = cat.get("lead_to_opportunity")
    assert isinstance(conv, ConversionKpi) and (conv.entity, conv.window_days) == ("lead_id", 90)
    assert isinstance(cat.get("sla_compliance"), ExternalKpi)
    nps = cat.get("nps")
    assert isinstance(nps, DerivedKpi) and nps.refs == ("promoter_share", "detractor_share")
    assert cat.get("win_rate").format.style == "percent" and cat.get("won_deals").format.style == "integer"
    assert cat.get("sales_cycle_days").direction == "lower"


def test_snapshot_and_duration_measures(cat):
    open_amount = cat.measure("open_amount")
    assert open_amount.is_snapshot and open_amount.time is None
    assert (
        open_amount.snapshot.end == "close_date" and str(open_amount.snapshot.end_if[0]) == "is_closed = true"
    )
    assert not open_amount.is_additive and cat.measure("won_amount").is_additive
    assert not cat.measure("ordering_accounts").is_additive
    cycle = cat.measure("won_cycle_days")
    assert cycle.duration.unit == "days" and cycle.unit == "days"
    assert set(cycle.columns) == {"created_at", "close_date", "is_won"}


def test_dimension_paths_are_resolved(cat):
    team = cat.dimension("team")
    path = team.paths["opportunities"]
    assert (path.via, path.target, path.column, path.target_key) == (
        "owner_id",
        "users",
        "team_id",
        "user_id",
    )
    assert team.paths["cases"].via is None and team.paths["cases"].target == "cases"
    assert cat.dimension("region").values == schema.ENUMS["region"]
    assert cat.dimension("case_channel").enum == "case_channel" and cat.dimension("channel").enum == "channel"
    assert cat.dimension_tables_for("win_rate", "team") == ("users",)


def test_records_are_frozen(cat):
    with pytest.raises(dataclasses.FrozenInstanceError):
        cat.get("revenue").unit = "count"
    with pytest.raises(TypeError):
        cat.kpis["x"] = cat.get("revenue")


def test_every_rule_is_documented():
    assert len(RULES) >= 10
    for r in RULES:
        assert r.doc, r.name


# --------------------------------------------------------------------------------------------
# Lookup and description
# --------------------------------------------------------------------------------------------
def test_unknown_kpi_suggests_the_nearest(cat):
    with pytest.raises(ConfigError, match='Did you mean "win_rate"'):
        cat.get("win_rat")
    with pytest.raises(ConfigError, match="is a measure"):
        cat.get("won_amount")
    with pytest.raises(ConfigError, match='Did you mean "service"'):
        cat.list("servce")
    with pytest.raises(ConfigError, match='Did you mean "region"'):
        cat.dimension("regoin")


def test_describe_in_both_languages(cat):
    d = cat.describe("win_rate", "zh")
    assert d["label"] == "赢率" and d["type"] == "ratio" and d["unit"] == "ratio"
    assert d["tables"] == ("opportunities",) and d["time"] == ("opportunities.close_date",)
    assert "team" in d["dimensions"] and "won_count" in d["measures"]
    text_en = cat.describe_text("win_rate", "en")
    assert "Win rate (win_rate)" in text_en and "won / (won + lost)" in text_en.lower()
    text_zh = cat.describe_text("open_pipeline", "zh")
    assert "在途商机金额" in text_zh and "时点值" in text_zh and "越高越好" in text_zh
    assert "snapshot" in cat.describe("open_pipeline")["time"][0]
    with pytest.raises(ConfigError):
        cat.describe("win_rate", "fr")


def test_describe_uses_config_language(cat, monkeypatch):
    monkeypatch.setenv("CRMLIB_LANG", "zh")
    assert cat.describe("csat")["label"] == "客户满意度（CSAT）"


# --------------------------------------------------------------------------------------------
# Wrong files: each gives its own message
# --------------------------------------------------------------------------------------------
WRONG = [
    # fixture, number of problems, fragments of the message
    ("wrong_unknown_key", 1, ["unknown key 'denominater'", 'Did you mean "denominator"?', ":6 "]),
    ("wrong_key_of_other_type", 1, ["unknown key 'numerator': it belongs to ratio KPIs"]),
    ("wrong_unknown_measure", 1, ["unknown measure 'won_cnt'", 'Did you mean "won_count"?']),
    ("wrong_derived_unknown_kpi", 1, ["uses unknown KPI 'won_deal'", 'Did you mean "won_deals"?']),
    ("wrong_cycle", 1, ["derived KPIs form a cycle: alpha -> beta -> gamma -> alpha"]),
    ("wrong_bad_agg", 1, ["agg 'summ' is not allowed", 'Did you mean "sum"?', "count_distinct"]),
    (
        "wrong_filter_unknown_column",
        1,
        ["has no column 'is_wonn'", 'Did you mean "is_won"?', "filters[1].column"],
    ),
    ("wrong_filter_enum", 1, ["value 'closed_wonn' for opportunities.stage", 'Did you mean "closed_won"?']),
    ("wrong_filter_type", 1, ["value 'true' for opportunities.is_won", "boolean"]),
    (
        "wrong_dimension_path",
        1,
        ["opportunities.owner_id references users.user_id, not table 'accounts'", "account_id->accounts"],
    ),
    ("wrong_missing_zh", 1, ["label has no Chinese text (zh)", "key label.zh"]),
    ("wrong_duplicate_name", 1, ["KPI revenue is already defined in", "sales.yaml", "override: true"]),
    ("wrong_duplicate_key", 1, ["key 'deals_closed' appears twice", "lines 3 and 10"]),
    ("wrong_override_nothing", 1, ["no earlier KPI is called revenu", 'Did you mean "revenue"?']),
    ("wrong_expr_syntax", 1, ["'revenue / / won_deals' is not a valid expression"]),
    ("wrong_expr_call", 1, ["contains a function call", "+ - * /"]),
    ("wrong_ratio_units", 1, ["unit ratio divides like by like", "won_amount is money", "unit: currency"]),
    ("wrong_cumulative_snapshot", 1, ["measure open_amount is a snapshot"]),
    ("wrong_kpi_dimension", 1, ["dimension 'region' has no path for table marketing_spend"]),
    ("wrong_conversion_entity", 1, ["entity 'account_id' is not a column of leads", "lead_id"]),
    ("wrong_format_unit", 1, ["format percent does not suit unit currency"]),
    (
        "wrong_measure_time",
        2,
        ["the measure has no time column", "created_at, mql_at", "leads.channel is str"],
    ),
    ("wrong_count_column", 1, ["agg count counts rows and takes no column", "count_distinct"]),
    ("wrong_yaml_syntax", 1, ["is not valid YAML", ":6:"]),
]


@pytest.mark.parametrize(("name", "count", "fragments"), WRONG, ids=[w[0] for w in WRONG])
def test_wrong_file_gives_its_specific_message(name, count, fragments):
    path = FIXTURES / f"{name}.yaml"
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    problems = info.value.problems
    assert len(problems) == count, "\n".join(p.render() for p in problems)
    assert all(p.file == str(path) for p in problems), "the package files must stay clean"
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    assert isinstance(info.value, ConfigError)


def test_every_wrong_fixture_is_checked():
    on_disk = {p.stem for p in FIXTURES.glob("wrong_*.yaml")}
    assert on_disk == {w[0] for w in WRONG} | {"wrong_several"}


def test_several_problems_are_reported_at_once():
    with pytest.raises(CatalogError) as info:
        load_catalog(FIXTURES / "wrong_several.yaml")
    err = info.value
    assert str(err).startswith("KPI catalog: 5 problems found")
    text = str(err)
    for fragment in (
        "unknown table 'marketing_spnd'. Did you mean \"marketing_spend\"?",
        "uses unknown KPI 'won_deal'",
        "label has no Chinese text",
        "direction 'up' is not allowed",
        "type 'ratoi' is not allowed. Did you mean \"ratio\"?",
    ):
        assert fragment in text
    assert [p.line for p in err.problems] == sorted(p.line for p in err.problems)


def test_problems_from_several_files_are_reported_together():
    paths = [FIXTURES / "wrong_bad_agg.yaml", FIXTURES / "wrong_cycle.yaml", FIXTURES / "no_such_file.yaml"]
    with pytest.raises(CatalogError) as info:
        load_catalog(paths)
    text = str(info.value)
    assert "summ" in text and "cycle" in text and "no_such_file.yaml: no such file or folder" in text


# --------------------------------------------------------------------------------------------
# User files
# --------------------------------------------------------------------------------------------
USER_KPI = """\
area: sales
kpis:
  deals_closed:
    type: simple
    measure: closed_count
    label: {en: Deals closed, zh: 关闭商机数}
    description: Won plus lost deals.
    unit: count
    direction: higher
"""


def test_user_file_from_environment_adds_a_kpi(tmp_path, monkeypatch):
    (tmp_path / "mine.yaml").write_text(USER_KPI, encoding="utf-8")
    assert "deals_closed" not in default_catalog()
    monkeypatch.setenv("CRMLIB_KPI_PATH", str(tmp_path / "mine.yaml"))
    cat = default_catalog()
    assert cat.get("deals_closed").label.zh == "关闭商机数"
    assert cat.get("deals_closed").area == "sales" and "revenue" in cat
    assert cat is default_catalog()  # cached
    (tmp_path / "mine.yaml").write_text(USER_KPI.replace("关闭商机数", "已关闭商机"), encoding="utf-8")
    stat = (tmp_path / "mine.yaml").stat()
    import os

    os.utime(tmp_path / "mine.yaml", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert default_catalog().get("deals_closed").label.zh == "已关闭商机"  # an edited file is re-read
    monkeypatch.delenv("CRMLIB_KPI_PATH")
    assert "deals_closed" not in default_catalog()


def test_formula_is_built_from_the_spec_when_not_written(tmp_path):
    (tmp_path / "mine.yaml").write_text(USER_KPI, encoding="utf-8")
    cat = load_catalog(tmp_path / "mine.yaml")
    assert cat.get("deals_closed").formula is None
    assert cat.formula("deals_closed") == "count of opportunities where is_closed = true, by close_date"
    assert "计算公式: count of opportunities" in cat.describe_text("deals_closed", "zh")


def test_user_folder_and_path_list(tmp_path):
    folder = tmp_path / "kpis"
    folder.mkdir()
    (folder / "a.yaml").write_text(USER_KPI, encoding="utf-8")
    (folder / "notes.txt").write_text("not a catalog file", encoding="utf-8")
    other = tmp_path / "b.yml"
    other.write_text(USER_KPI.replace("deals_closed", "deals_closed_2"), encoding="utf-8")
    import os

    cat = load_catalog(f"{folder}{os.pathsep}{other}")
    assert {"deals_closed", "deals_closed_2"} <= set(cat.kpis)
    assert cat.files[-2:] == (str(folder / "a.yaml"), str(other))


def test_override_replaces_a_packaged_kpi(tmp_path):
    text = """\
kpis:
  win_rate:
    override: true
    area: sales
    type: ratio
    numerator: won_count
    denominator: created_count
    label: {en: Win rate (of created), zh: 赢率（按创建）}
    description: Our company divides by opportunities created.
    unit: ratio
    direction: higher
"""
    (tmp_path / "override.yaml").write_text(text, encoding="utf-8")
    cat = load_catalog(tmp_path / "override.yaml")
    assert cat.get("win_rate").denominator == "created_count"
    assert str(tmp_path) in str(cat.get("win_rate").source)
    assert list(cat.kpis).index("win_rate") == list(load_catalog([]).kpis).index("win_rate")


def test_a_user_file_can_add_a_dimension(tmp_path):
    text = """\
dimensions:
  owner_region:
    label: {en: Owner region, zh: 负责人区域}
    paths:
      opportunities: users.region via owner_id
      leads: region
"""
    (tmp_path / "dims.yaml").write_text(text, encoding="utf-8")
    cat = load_catalog(tmp_path / "dims.yaml")
    assert "owner_region" in cat.get("win_rate").dimensions
    assert "owner_region" not in cat.get("csat").dimensions


# --------------------------------------------------------------------------------------------
# The guide's worked example
# --------------------------------------------------------------------------------------------
def _example(kind: str, lang: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {re.escape(kind)}[^>]*-->\n```{lang}\n(.*?)```", text, re.S)
    assert match, f"docs/kpis.md has no {kind} example"
    return match.group(1)


def test_docs_example_kpi_file_loads(tmp_path):
    path = tmp_path / "my_kpis.yaml"
    path.write_text(_example("my_kpis.yaml", "yaml"), encoding="utf-8")
    cat = load_catalog(path)
    assert cat.get("new_business_revenue").unit == "currency"
    assert cat.measure("won_new_business_amount").money
    share = cat.get("new_business_share")
    assert share.refs == ("new_business_revenue", "revenue")
    assert [m.name for m in cat.measures_for("new_business_share")] == [
        "won_new_business_amount",
        "won_amount",
    ]
    assert cat.get("demos").dimensions == ("team", "user")
    assert str(cat.get("revenue_12m").window) == "last 12 months"
    assert cat.get("new_business_revenue").label.zh == "新客户销售额"


def test_docs_example_errors_are_the_real_ones(tmp_path):
    bad = _example("my_kpis.yaml", "yaml")
    bad = bad.replace("expr: new_business_revenue / revenue", "expr: new_busines_revenue / revenue")
    bad = bad.replace("dimensions: [team, user]", "dimensions: [team, channel]")
    path = tmp_path / "my_kpis.yaml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    shown = _example("errors", "").strip()
    assert str(info.value).replace(str(tmp_path) + "/", "") == shown


def test_docs_example_targets_fit_the_schema_and_the_catalog(tmp_path):
    path = tmp_path / "my_kpis.yaml"
    path.write_text(_example("my_kpis.yaml", "yaml"), encoding="utf-8")
    cat = load_catalog(path)
    (tmp_path / "targets.csv").write_text(_example("targets.csv", "csv"), encoding="utf-8")
    targets = schema.conform(pl.read_csv(tmp_path / "targets.csv", infer_schema=False), "targets")
    assert targets.null_count().sum_horizontal().item() == 0
    assert set(targets["grain"]) <= set(schema.ENUMS["grain"])
    assert set(targets["level"]) <= set(schema.ENUMS["target_level"])
    for name in targets["kpi"].unique():
        cat.get(name)
    assert targets["period"].dtype == pl.Date and targets["period"].min() == dt.date(2025, 1, 1)


# --------------------------------------------------------------------------------------------
# Derived expressions and filter values
# --------------------------------------------------------------------------------------------
def test_derived_expression_evaluates_numbers_and_polars_expressions(cat):
    nps = cat.get("nps")
    assert nps.evaluate({"promoter_share": 0.5, "detractor_share": 0.2}) == pytest.approx(30.0)
    frame = pl.DataFrame({"promoter_share": [0.5, 0.1], "detractor_share": [0.2, 0.3]})
    expr = nps.evaluate({n: pl.col(n) for n in nps.refs})
    assert frame.select(expr.alias("nps"))["nps"].to_list() == pytest.approx([30.0, -20.0])
    avg = cat.get("avg_deal_size")

    def safe_divide(a, b):
        return None if b == 0 else a / b

    assert avg.evaluate({"revenue": 100.0, "won_deals": 0}, divide=safe_divide) is None


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("revenue ** 2", "operator that is not allowed"),
        ("revenue.real", "an attribute"),
        ("revenue > 1", "a comparison"),
        ("revenue if won_deals else 0", "IfExp"),
        ("'a' + revenue", "non-numeric constant"),
        ("True * revenue", "non-numeric constant"),
        ("not revenue", "operator that is not allowed"),
        ("revenue[0]", "a subscript"),
        ("", "empty"),
        ("lambda: 1", "Lambda"),
    ],
)
def test_expressions_outside_arithmetic_are_rejected(expr, fragment):
    with pytest.raises(ExprError, match=re.escape(fragment)):
        parse_expr(expr)


def test_expression_names_in_order():
    assert expr_names("(b - a) * 100 / b + c") == ("b", "a", "c")
    assert expr_names("-x + 2.5") == ("x",)


def test_date_filter_values_are_parsed(tmp_path):
    text = """\
measures:
  recent_wins:
    table: opportunities
    agg: count
    filters:
      - {column: close_date, op: ge, value: "2025-01-01"}
      - {column: created_at, op: lt, value: 2025-06-30}
      - {column: stage, op: in, value: [closed_won]}
    time: close_date
"""
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    f1, f2, f3 = load_catalog(tmp_path / "m.yaml").measure("recent_wins").filters
    assert f1.value == dt.date(2025, 1, 1)
    assert f2.value == dt.datetime(2025, 6, 30)
    assert f3.value == ("closed_won",)


def test_yaml_parsed_in_c_and_in_python_alike():
    """libyaml parses the catalog when PyYAML has it: the same data, lines and duplicate keys; errors
    worded as the Python parser words them."""
    import yaml

    from crmlib.kpis import _yaml

    def shape(x):
        if isinstance(x, dict):
            return (getattr(x, "line", None), dict(getattr(x, "lines", {})), {k: shape(v) for k, v in x.items()})
        return [shape(v) for v in x] if isinstance(x, list) else x

    files = [*Path(_yaml.__file__).parent.glob("*.yaml"), *FIXTURES.glob("*.yaml")]
    text = "a: 1\nb:\n  c: [1, 2]\n  c: 3\na: 2\n"
    for t in [text, *(f.read_text(encoding="utf-8") for f in files)]:
        try:
            py = _yaml._load(_yaml._Loader, t)
        except yaml.YAMLError as exc:
            with pytest.raises(yaml.YAMLError) as got:
                _yaml.load_yaml(t)
            assert str(got.value) == str(exc)
            continue
        fast = _yaml.load_yaml(t)
        assert shape(fast[0]) == shape(py[0])
        assert [(d.key, d.line, d.first_line) for d in fast[1]] == [(d.key, d.line, d.first_line) for d in py[1]]
    assert [d.key for d in _yaml.load_yaml(text)[1]] == ["c", "a"]
