"""The import steps that go beyond renaming a file's columns (see :mod:`crmlib.importer` and docs/import.md).

* ``compute``: a canonical column computed from file columns with arithmetic (``Quantity * UnitPrice``);
* ``prefixes``: a canonical column set from how a file column starts (``C536379`` -> ``cancelled``);
* ``lines``: the file holds several lines per record (invoice lines): they are grouped by the table's key;
* ``negate``: amounts written negative for some records (cancellations) stored as positive amounts;
* ``derive``: rows of a parent table built from the file (``cases`` from an event log, ``accounts`` from
  orders or cases);
* event ids of a plain event log that has none.

Everything is whole-column polars; no loop over rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from . import schema
from .errors import Problem

ROW = "__row"
FILE = "__file"
DONE = ("solved", "closed")

#: Parent tables an import can derive, and the tables they can be derived from.
DERIVABLE = {
    "cases": ("case_events",),
    "accounts": ("orders", "cases", "subscriptions", "contacts", "opportunities"),
}
#: Columns of a derived table set by the derivation itself (a file column cannot be mapped to them).
DERIVED_BY_RULE = {
    "cases": ("case_id", "created_at", "status", "closed_at"),
    "accounts": ("account_id", "created_at"),
}


# ------------------------------------------------------------------------------------------------
# compute: arithmetic over file columns
# ------------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(`[^`]+`)|(\d+(?:\.\d+)?)|(abs)\s*(?=\()|([A-Za-z_][A-Za-z0-9_]*)|([-+*/()]))")


@dataclass(frozen=True)
class Expression:
    """A parsed ``compute`` expression: numbers, file columns, + - * /, parentheses and abs()."""

    text: str
    tree: tuple

    @property
    def columns(self) -> tuple[str, ...]:
        found: list[str] = []

        def walk(node: tuple) -> None:
            if node[0] == "col":
                found.append(node[1])
            for child in node[1:]:
                if isinstance(child, tuple):
                    walk(child)

        walk(self.tree)
        return tuple(dict.fromkeys(found))

    def to_polars(self, column: Callable[[str], pl.Expr]) -> pl.Expr:
        def build(node: tuple) -> pl.Expr:
            kind = node[0]
            if kind == "num":
                return pl.lit(node[1], pl.Float64)
            if kind == "col":
                return column(node[1])
            if kind == "neg":
                return -build(node[1])
            if kind == "abs":
                return build(node[1]).abs()
            a, b = build(node[1]), build(node[2])
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[kind]

        return build(self.tree)


def parse_expression(text: str) -> Expression:
    """Parse ``text``; raises ``ValueError`` saying what is wrong (column names with spaces go in backticks)."""
    tokens: list[tuple[str, str]] = []
    pos, text = 0, str(text)
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(
                f"cannot read {text[pos:].strip()!r} (write column names with spaces in backticks, "
                "e.g. `Unit Price`)"
            )
        quoted, number, func, name, op = m.groups()
        if quoted:
            tokens.append(("col", quoted[1:-1]))
        elif number:
            tokens.append(("num", number))
        elif func:
            tokens.append(("abs", func))
        elif name:
            tokens.append(("col", name))
        else:
            tokens.append(("op", op))
        pos = m.end()
    if not tokens:
        raise ValueError("the expression is empty")
    i = 0

    def peek() -> tuple[str, str] | None:
        return tokens[i] if i < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal i
        if i >= len(tokens):
            raise ValueError("the expression ends too early")
        i += 1
        return tokens[i - 1]

    def expr() -> tuple:
        node = term()
        while peek() in (("op", "+"), ("op", "-")):
            node = (take()[1], node, term())
        return node

    def term() -> tuple:
        node = factor()
        while peek() in (("op", "*"), ("op", "/")):
            node = (take()[1], node, factor())
        return node

    def factor() -> tuple:
        kind, value = take()
        if (kind, value) == ("op", "-"):
            return ("neg", factor())
        if (kind, value) == ("op", "("):
            node = expr()
            if take() != ("op", ")"):
                raise ValueError("a parenthesis is not closed")
            return node
        if kind == "abs":
            if take() != ("op", "("):
                raise ValueError("abs must be followed by (")
            node = expr()
            if take() != ("op", ")"):
                raise ValueError("abs( is not closed")
            return ("abs", node)
        if kind == "num":
            return ("num", float(value))
        if kind == "col":
            return ("col", value)
        raise ValueError(f"unexpected {value!r}")

    tree = expr()
    if i != len(tokens):
        hint = (
            " (an operator + - * / is missing before it; write column names with spaces in backticks, "
            "e.g. `Unit Price`)"
            if tokens[i][0] == "col"
            else ""
        )
        raise ValueError(f"unexpected {tokens[i][1]!r}{hint}")
    return Expression(text, tree)


def number(text: pl.Expr) -> pl.Expr:
    """File text as a number (spaces, a leading currency sign and thousands separators allowed)."""
    t = (
        text.cast(pl.String)
        .str.strip_chars()
        .str.replace(r"^[$€£¥￥]", "")
        .str.replace_all(r"[\s\u00a0]", "")
    )
    t = (
        pl.when(t.str.contains(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$"))
        .then(t.str.replace_all(",", ""))
        .otherwise(t)
    )
    return t.cast(pl.Float64, strict=False)


def numeric_operands(
    frame: pl.DataFrame, columns: dict[str, str], target: str, table: str
) -> tuple[pl.DataFrame, list[Problem]]:
    """The operand columns of a computed column as numbers (a plain cast first; the slower cleaning of
    :func:`number` only for the values the cast cannot read), and ``wrong_type`` problems for text that is
    not a number."""
    problems = []
    steps = []
    for shown, actual in columns.items():
        col = frame.get_column(actual)
        if col.dtype.is_numeric():
            continue
        text = col.cast(pl.String)
        value = text.cast(pl.Float64, strict=False)
        retry = value.is_null() & text.is_not_null()
        if retry.any():
            cleaned = pl.select(number(pl.lit(text.filter(retry)))).to_series()
            value = value.scatter(retry.arg_true(), cleaned)
            bad = retry & value.is_null() & (text.str.strip_chars().fill_null("") != "")
            if bad.any():
                hits = frame.filter(bad)
                problems.append(
                    Problem(
                        "wrong_type",
                        table,
                        f"{target} is computed from {shown}, which holds values that are not numbers",
                        f"Correct those values of {shown} or leave them empty.",
                        column=shown,
                        rows=tuple(hits.get_column(ROW).head(5).to_list()),
                        n_rows=hits.height,
                        sample=tuple(
                            str(v) for v in hits.get_column(actual).unique(maintain_order=True).head(3)
                        ),
                        file=hits.get_column(FILE)[0] if FILE in hits.columns else None,
                    )
                )
        steps.append(value.alias(actual))
    return (frame.with_columns(steps) if steps else frame), problems


# ------------------------------------------------------------------------------------------------
# lines, negate
# ------------------------------------------------------------------------------------------------
def aggregate_lines(typed: pl.DataFrame, table: schema.Table, sums: tuple[str, ...]) -> pl.DataFrame:
    """One record per primary key from its lines: ``sums`` summed (empty when every line is empty),
    dates and datetimes the earliest, every other column the first non-empty value in file order; ``__row``
    and ``__file`` of the record's first line. Extra (non-canonical) columns are kept the same way."""
    pk = list(table.primary_key)
    dtypes = {c.name: c.dtype for c in table.columns}
    aggs = []
    for c in typed.columns:
        if c in pk:
            continue
        if c in sums:
            aggs.append(pl.when(pl.col(c).count() > 0).then(pl.col(c).sum()).alias(c))
        elif dtypes.get(c) in {"date", "datetime"}:
            aggs.append(pl.col(c).min())
        elif c in (ROW, FILE):
            aggs.append(pl.col(c).first())
        else:
            aggs.append(pl.col(c).drop_nulls().first())
    return typed.group_by(pk, maintain_order=True).agg(aggs).select(typed.columns)


def negate(frame: pl.DataFrame, rules: dict[str, tuple[str, str]]) -> pl.DataFrame:
    """``{amount: (status, cancelled)}``: amount -> -amount where status == cancelled."""
    steps = [
        pl.when(pl.col(cond) == value).then(-pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c, (cond, value) in rules.items()
        if c in frame.columns and cond in frame.columns
    ]
    return frame.with_columns(steps) if steps else frame


# ------------------------------------------------------------------------------------------------
# derived parent tables
# ------------------------------------------------------------------------------------------------
def event_ids(events: pl.DataFrame) -> pl.Expr:
    """Ids for a plain event log without them: ``<case_id>~<occurred_at>~<n>`` (n counts the rows of the
    same case and instant in file order): the same log gives the same ids, so importing it again replaces
    its rows."""
    n = pl.int_range(pl.len()).over("case_id", "occurred_at")
    return pl.concat_str(
        [
            pl.col("case_id"),
            pl.col("occurred_at").dt.strftime("%Y%m%dT%H%M%S%.6f"),
            n.cast(pl.String).str.zfill(4),
        ],
        separator="~",
    ).alias("event_id")


def _last_values(columns: list[str]) -> list[pl.Expr]:
    return [pl.col(c).drop_nulls().last().alias(c) for c in columns]


def derive_cases(events: pl.DataFrame, extras: list[str]) -> pl.DataFrame:
    """One case per ``case_id`` of a typed event log: ``created_at`` its first event, ``status`` its last
    status change (``new`` without any), ``closed_at`` its last solve (a change into solved/closed from
    another status) when its status is solved or closed, ``agent_id`` the last agent named; the ``extras``
    (priority, channel, account_id... mapped from the log) take the last non-empty value. ``__row`` and
    ``__file`` are those of the case's first row in the file."""
    ev = events.with_row_index("_i").sort("case_id", "occurred_at", "_i")
    sc = ev.filter((pl.col("event_type") == "status_change") & pl.col("status").is_not_null())
    done = pl.col("status").is_in(DONE)
    prev_done = done.shift(1).over("case_id").fill_null(False)
    sc = sc.with_columns((done & ~prev_done).alias("_solve"))
    status = sc.group_by("case_id").agg(
        pl.col("status").last().alias("status"),
        pl.col("occurred_at").filter(pl.col("_solve")).max().alias("_last_solve"),
    )
    text_extras = [c for c in extras if c in ev.columns and c not in (*DERIVED_BY_RULE["cases"], "agent_id")]
    ev = ev.with_columns(
        [pl.col(c).cast(pl.String).str.strip_chars().replace("", None).alias(c) for c in text_extras]
    )
    cases = ev.group_by("case_id", maintain_order=True).agg(
        pl.col("occurred_at").min().alias("created_at"),
        pl.col(ROW).min().alias(ROW),
        pl.col(FILE).first().alias(FILE),
        pl.col("agent_id").drop_nulls().last().alias("agent_id"),
        *_last_values(text_extras),
    )
    cases = (
        cases.join(status, on="case_id", how="left")
        .with_columns(
            pl.col("status").fill_null("new"),
        )
        .with_columns(
            pl.when(pl.col("status").is_in(DONE)).then(pl.col("_last_solve")).alias("closed_at"),
        )
        .drop("_last_solve")
    )
    return cases


def derive_accounts(children: pl.DataFrame, time_column: str, extras: list[str]) -> pl.DataFrame:
    """One account per ``account_id`` of ``children`` (orders, cases...): ``created_at`` the earliest
    ``time_column``, ``name`` the id unless a column is mapped to it, other ``extras`` (country...) the
    value of the latest child row that has one."""
    have = [c for c in extras if c in children.columns and c not in DERIVED_BY_RULE["accounts"]]
    frame = children.filter(pl.col("account_id").is_not_null()).with_row_index("_i")
    frame = frame.with_columns(
        [pl.col(c).cast(pl.String).str.strip_chars().replace("", None).alias(c) for c in have]
    )
    frame = frame.sort("account_id", time_column, "_i")
    accounts = frame.group_by("account_id", maintain_order=True).agg(
        pl.col(time_column).min().cast(pl.Datetime("us")).alias("created_at"),
        pl.col(ROW).min().alias(ROW),
        pl.col(FILE).first().alias(FILE),
        *_last_values(have),
    )
    name = pl.col("name") if "name" in accounts.columns else pl.lit(None, pl.String)
    return accounts.with_columns(pl.coalesce(name, pl.col("account_id")).alias("name")).sort(ROW)
