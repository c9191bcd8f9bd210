"""KPIs in words, in English or Chinese: what ``crmlib kpis show`` prints and reports show."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .spec import ConversionKpi, CumulativeKpi, DerivedKpi, ExternalKpi, RatioKpi

if TYPE_CHECKING:
    from .catalog import Catalog


def formula(cat: Catalog, name: str, lang: str | None = None) -> str:
    """The formula in words: the declared one, else one built from the spec."""
    k, lang = cat.get(name), resolve_lang(lang)
    if k.formula:
        return k.formula.get(lang)
    if isinstance(k, RatioKpi):
        return f"{cat.measures[k.numerator].summary()} / {cat.measures[k.denominator].summary()}"
    if isinstance(k, DerivedKpi):
        return k.expr
    if isinstance(k, ConversionKpi):
        return (
            f"share of {k.base} ({k.entity}) followed by {k.converted} within {k.window_days} days"
            if k.calculation == "conversion_rate"
            else f"{k.base} ({k.entity}) followed by {k.converted} within {k.window_days} days"
        )
    if isinstance(k, CumulativeKpi):
        return f"{cat.measures[k.measure].summary()}, {k.window}"
    if isinstance(k, ExternalKpi):
        return f"computed by {k.provider}"
    return cat.measures[k.measure].summary()


def describe(cat: Catalog, name: str, lang: str | None = None) -> dict[str, Any]:
    """Everything a reader needs about a KPI, in ``lang`` (for ``crmlib kpis show`` and reports)."""
    k, lang = cat.get(name), resolve_lang(lang)
    out: dict[str, Any] = {
        "name": k.name,
        "label": k.label.get(lang),
        "area": k.area,
        "type": k.type,
        "description": k.description.get(lang),
        "formula": formula(cat, name, lang),
        "unit": k.unit,
        "format": f"{k.format.style} ({k.format.decimals} decimals)",
        "direction": k.direction,
        "tables": cat.tables_for(name),
        "time": cat.time_columns(name),
        "measures": {m.name: m.summary() for m in cat.measures_for(name)},
        "dimensions": k.dimensions,
    }
    if isinstance(k, DerivedKpi):
        out["uses"] = k.refs
    if isinstance(k, CumulativeKpi):
        out["window"] = str(k.window)
    if isinstance(k, ConversionKpi):
        out["window"] = f"{k.window_days} days, by {k.entity}"
    if isinstance(k, ExternalKpi):
        out["provider"] = k.provider
    if k.range:
        out["range"] = k.range
    out["source"] = str(k.source)
    return out


def describe_text(cat: Catalog, name: str, lang: str | None = None) -> str:
    """:func:`describe` as a few lines of text."""
    lang = resolve_lang(lang)
    d = describe(cat, name, lang)
    words = _WORDS[lang]
    lines = [f"{d['label']} ({d['name']})", d["description"], ""]
    for key in (
        "formula",
        "type",
        "area",
        "unit",
        "direction",
        "tables",
        "time",
        "dimensions",
        "uses",
        "window",
        "provider",
        "range",
        "source",
    ):
        if key not in d:
            continue
        value = d[key]
        if key == "area":
            value = cat.area_label(value, lang)
        elif key in ("type", "unit", "direction"):
            value = _VALUES[lang].get(value, value)
        if isinstance(value, tuple | list):
            value = ", ".join(map(str, value)) or "-"
        lines.append(f"{words.get(key, key)}: {value}")
    lines.append(f"{words['measures']}:")
    lines += [f"  {m}: {s}" for m, s in d["measures"].items()] or ["  -"]
    return "\n".join(lines)


_WORDS = {
    "en": {
        "formula": "Formula",
        "type": "Type",
        "area": "Area",
        "unit": "Unit",
        "direction": "Direction",
        "tables": "Source tables",
        "time": "Time",
        "dimensions": "Dimensions",
        "uses": "Uses KPIs",
        "window": "Window",
        "provider": "Computed by",
        "range": "Range",
        "source": "Defined in",
        "measures": "Measures",
    },
    "zh": {
        "formula": "计算公式",
        "type": "类型",
        "area": "领域",
        "unit": "单位",
        "direction": "方向",
        "tables": "数据表",
        "time": "时间字段",
        "dimensions": "可用维度",
        "uses": "引用指标",
        "window": "窗口",
        "provider": "计算函数",
        "range": "取值范围",
        "source": "定义位置",
        "measures": "度量",
    },
}


_VALUES = {
    "en": {"higher": "higher is better", "lower": "lower is better", "currency": "money (base currency)"},
    "zh": {
        "higher": "越高越好",
        "lower": "越低越好",
        "simple": "简单",
        "ratio": "比率",
        "derived": "派生",
        "cumulative": "累计",
        "conversion": "转化",
        "external": "外部计算",
        "currency": "金额（本位币）",
        "count": "数量",
        "days": "天",
        "hours": "小时",
        "score": "分值",
    },
}


def resolve_lang(lang: str | None) -> str:
    from ..config import lang as default_lang

    return default_lang() if lang is None else lang
