"""English and Chinese labels. ``t("rows", "zh")`` -> "行数". Unknown keys fall back to the key itself."""

from __future__ import annotations

from .config import LANGS
from .errors import ConfigError

LABELS: dict[str, dict[str, str]] = {
    "table": {"en": "Table", "zh": "数据表"},
    "rows": {"en": "Rows", "zh": "行数"},
    "first": {"en": "First", "zh": "最早"},
    "last": {"en": "Last", "zh": "最晚"},
    "time_column": {"en": "Time column", "zh": "时间字段"},
    "month": {"en": "Month", "zh": "月份"},
    "records": {"en": "Records", "zh": "记录数"},
    "data_overview": {"en": "Data overview", "zh": "数据概览"},
    "records_per_month": {"en": "Records per month", "zh": "每月记录数"},
    "source": {"en": "Source", "zh": "数据源"},
    "fingerprint": {"en": "Fingerprint", "zh": "数据指纹"},
    "validation": {"en": "Validation", "zh": "数据校验"},
    "no_problems": {"en": "No problems found", "zh": "未发现问题"},
    "problem": {"en": "Problem", "zh": "问题"},
    "severity": {"en": "Severity", "zh": "级别"},
}


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ConfigError(f"Language {lang!r} is not supported. Use one of: {', '.join(LANGS)}.")
    return lang


def t(key: str, lang: str = "en") -> str:
    check_lang(lang)
    entry = LABELS.get(key)
    return entry[lang] if entry else key
