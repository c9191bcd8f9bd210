"""great_tables formatting of small result frames."""

from __future__ import annotations

import polars as pl
from great_tables import GT

from .i18n import t


def fmt_table_info(info: pl.DataFrame, lang: str = "en", title: str | None = None) -> GT:
    """The table/rows/first/last overview (input: :meth:`crmlib.Crm.info`)."""
    shown = info.select(
        "table",
        "rows",
        pl.col("first").str.slice(0, 10),
        pl.col("last").str.slice(0, 10),
    )
    return (
        GT(shown)
        .tab_header(title=title or t("data_overview", lang))
        .cols_label(table=t("table", lang), rows=t("rows", lang), first=t("first", lang), last=t("last", lang))
        .fmt_integer(columns="rows")
        .sub_missing(missing_text="–")
    )


def fmt_problems(problems, lang: str = "en") -> GT:
    """Validation problems (:func:`crmlib.validate.validate_source`) as a table; says so when there are none."""
    rows = [
        {"severity": p.severity, "table": p.table, "column": p.column or "", "rows": p.n_rows, "problem": p.render()}
        for p in problems
    ]
    frame = pl.DataFrame(
        rows, schema={"severity": pl.String, "table": pl.String, "column": pl.String, "rows": pl.Int64,
                      "problem": pl.String}
    )
    gt = GT(frame).tab_header(title=t("validation", lang))
    if frame.height == 0:
        return gt.tab_source_note(t("no_problems", lang))
    return gt.cols_label(severity=t("severity", lang), table=t("table", lang), rows=t("rows", lang),
                         problem=t("problem", lang)).fmt_integer(columns="rows")
