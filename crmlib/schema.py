"""The canonical CRM data model, as data.

Every source (demo simulator, files, databases) maps into these tables; everything downstream
(validation, KPI engine, area analytics) reads them through this module. Nothing else declares a
table, a column type or an enum.

Types are named by :data:`DTYPES` (``str``, ``int``, ``float``, ``bool``, ``date``, ``datetime``);
datetimes are naive and mean local business time of the company. Money columns carry the name of
the currency column next to them (``Column.currency``); amounts are in that currency, and
``fx_rates`` converts them to the base currency (:func:`crmlib.config.base_currency`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import polars as pl

from .errors import ConfigError, suggest

DTYPES: MappingProxyType[str, pl.DataType] = MappingProxyType(
    {
        "str": pl.String(),
        "int": pl.Int64(),
        "float": pl.Float64(),
        "bool": pl.Boolean(),
        "date": pl.Date(),
        "datetime": pl.Datetime("us"),
    }
)

SQL_TYPES: MappingProxyType[str, str] = MappingProxyType(
    {
        "str": "VARCHAR",
        "int": "BIGINT",
        "float": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
        "date": "DATE",
        "datetime": "TIMESTAMP",
    }
)

# --------------------------------------------------------------------------------------------
# Enums. Order matters where it is a process order (stages, statuses, priorities).
# --------------------------------------------------------------------------------------------
ENUMS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        # Opportunity stages in pipeline order; the last two are closed.
        "stage": (
            "prospecting",
            "qualification",
            "needs_analysis",
            "proposal",
            "negotiation",
            "closed_won",
            "closed_lost",
        ),
        "forecast_category": ("pipeline", "best_case", "commit", "closed", "omitted"),
        "opportunity_type": ("new", "upsell", "renewal"),
        "lead_status": ("new", "working", "nurturing", "qualified", "unqualified", "converted"),
        # Marketing channels (leads, campaigns, spend, touchpoints).
        "channel": (
            "paid_search",
            "organic_search",
            "social_paid",
            "social_organic",
            "display",
            "email",
            "events",
            "webinar",
            "referral",
            "partner",
            "direct",
        ),
        "interaction": ("impression", "click", "visit", "email_open", "form_submit", "event_attend", "call"),
        "activity_type": ("call", "email", "meeting", "demo", "task"),
        "case_channel": ("email", "phone", "chat", "web", "social"),
        "priority": ("low", "normal", "high", "urgent"),
        # Ticket statuses in lifecycle order (Zendesk-like); pending = waiting on the customer.
        "case_status": ("new", "open", "pending", "on_hold", "solved", "closed"),
        "case_event_type": ("status_change", "agent_reply", "customer_reply", "internal_note"),
        "survey_type": ("csat", "nps", "ces"),
        "segment": ("enterprise", "mid_market", "smb"),
        "region": ("North", "East", "South", "West"),
        "role": ("sales_rep", "sales_manager", "service_agent", "service_manager", "marketer", "executive"),
        "function": ("sales", "service", "marketing"),
        "target_level": ("company", "department", "team", "user"),
        "grain": ("day", "week", "month", "quarter", "year"),
        "order_status": ("completed", "cancelled"),
    }
)

CLOSED_STAGES = ("closed_won", "closed_lost")
OPEN_STAGES = tuple(s for s in ENUMS["stage"] if s not in CLOSED_STAGES)
STAGE_ORDER = MappingProxyType({s: i for i, s in enumerate(ENUMS["stage"])})
DEFAULT_STAGE_PROBABILITY = MappingProxyType(
    {
        "prospecting": 0.10,
        "qualification": 0.20,
        "needs_analysis": 0.40,
        "proposal": 0.60,
        "negotiation": 0.80,
        "closed_won": 1.0,
        "closed_lost": 0.0,
    }
)


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    description: str = ""
    nullable: bool = True
    enum: str | None = None  # a key of ENUMS
    references: str | None = None  # "table.column"
    currency: str | None = None  # for money columns: the column holding the currency code
    non_negative: bool = False

    @property
    def polars_dtype(self) -> pl.DataType:
        return DTYPES[self.dtype]

    @property
    def is_money(self) -> bool:
        return self.currency is not None


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    time_column: str | None = None  # the column a date range applies to
    # (start, end) column pairs that must be ordered: end >= start when both are set
    ordered: tuple[tuple[str, str], ...] = ()

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise ConfigError(
            f"Table {self.name} has no column {name!r}.{suggest(name, self.column_names)}"
            f" Its columns are: {', '.join(self.column_names)}."
        )

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.nullable)

    @property
    def polars_schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.polars_dtype for c in self.columns})

    @property
    def foreign_keys(self) -> tuple[tuple[str, str, str], ...]:
        """(column, referenced table, referenced column) triples."""
        return tuple((c.name, *c.references.split(".")) for c in self.columns if c.references)

    @property
    def money_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.is_money)


def C(name: str, dtype: str, description: str = "", **kw) -> Column:  # noqa: N802 - short on purpose
    return Column(name, dtype, description, **kw)


def _req(name: str, dtype: str, description: str = "", **kw) -> Column:
    return Column(name, dtype, description, nullable=False, **kw)


_TABLES: tuple[Table, ...] = (
    Table(
        "teams",
        "Organisation units: sales teams roll up to departments; service and marketing teams likewise.",
        (
            _req("team_id", "str"),
            _req("name", "str"),
            _req("department", "str", "department the team belongs to (level between company and team)"),
            _req("function", "str", enum="function"),
            C("region", "str", "home region of the team; null for teams covering all regions", enum="region"),
            C("parent_team_id", "str", "for nested teams", references="teams.team_id"),
        ),
        ("team_id",),
    ),
    Table(
        "users",
        "People who own accounts, opportunities, activities or cases (reps, agents, managers, marketers).",
        (
            _req("user_id", "str"),
            _req("name", "str"),
            C("email", "str"),
            _req("role", "str", enum="role"),
            C("team_id", "str", references="teams.team_id"),
            C("department", "str"),
            C("region", "str", enum="region"),
            C("manager_id", "str", references="users.user_id"),
            C("hired_at", "date"),
            _req("is_active", "bool"),
        ),
        ("user_id",),
    ),
    Table(
        "accounts",
        "Customer companies (and prospects).",
        (
            _req("account_id", "str"),
            _req("name", "str"),
            C("industry", "str"),
            C("segment", "str", enum="segment"),
            C("region", "str", enum="region"),
            C("country", "str"),
            C("owner_id", "str", references="users.user_id"),
            _req("created_at", "datetime"),
        ),
        ("account_id",),
        time_column="created_at",
    ),
    Table(
        "contacts",
        "People at accounts.",
        (
            _req("contact_id", "str"),
            _req("account_id", "str", references="accounts.account_id"),
            C("name", "str"),
            C("email", "str"),
            C("title", "str"),
            C("lead_id", "str", "the lead this contact was converted from", references="leads.lead_id"),
            _req("created_at", "datetime"),
        ),
        ("contact_id",),
        time_column="created_at",
    ),
    Table(
        "products",
        "What is sold.",
        (
            _req("product_id", "str"),
            _req("name", "str"),
            _req("family", "str"),
            _req("list_price", "float", currency="currency", non_negative=True),
            _req("currency", "str"),
            _req("is_subscription", "bool"),
        ),
        ("product_id",),
    ),
    Table(
        "campaigns",
        "Marketing campaigns.",
        (
            _req("campaign_id", "str"),
            _req("name", "str"),
            _req("channel", "str", enum="channel"),
            _req("start_date", "date"),
            C("end_date", "date"),
            C("budget", "float", currency="currency", non_negative=True),
            _req("currency", "str"),
            C("owner_id", "str", references="users.user_id"),
        ),
        ("campaign_id",),
        time_column="start_date",
        ordered=(("start_date", "end_date"),),
    ),
    Table(
        "marketing_spend",
        "Spend by day and campaign.",
        (
            _req("date", "date"),
            _req("campaign_id", "str", references="campaigns.campaign_id"),
            _req("channel", "str", enum="channel"),
            _req("amount", "float", currency="currency", non_negative=True),
            _req("currency", "str"),
        ),
        ("date", "campaign_id"),
        time_column="date",
    ),
    Table(
        "leads",
        "Marketing and sales leads, from creation to conversion.",
        (
            _req("lead_id", "str"),
            _req("created_at", "datetime"),
            _req("channel", "str", enum="channel"),
            C("campaign_id", "str", references="campaigns.campaign_id"),
            _req("status", "str", enum="lead_status"),
            C("owner_id", "str", references="users.user_id"),
            C("region", "str", enum="region"),
            C("mql_at", "datetime", "became a marketing-qualified lead"),
            C("sql_at", "datetime", "became a sales-qualified lead"),
            C("converted_at", "datetime"),
            C("converted_account_id", "str", references="accounts.account_id"),
            C("converted_opportunity_id", "str", references="opportunities.opportunity_id"),
        ),
        ("lead_id",),
        time_column="created_at",
        ordered=(("created_at", "mql_at"), ("created_at", "sql_at"), ("created_at", "converted_at")),
    ),
    Table(
        "opportunities",
        "Deals. Amount is in the deal's currency; probability in 0..1.",
        (
            _req("opportunity_id", "str"),
            _req("name", "str"),
            _req("account_id", "str", references="accounts.account_id"),
            _req("owner_id", "str", references="users.user_id"),
            C("product_id", "str", "main product of the deal", references="products.product_id"),
            _req("created_at", "datetime"),
            _req("close_date", "date", "actual close date when closed, expected close date when open"),
            _req("stage", "str", enum="stage"),
            _req("is_closed", "bool"),
            _req("is_won", "bool"),
            _req("amount", "float", currency="currency", non_negative=True),
            _req("currency", "str"),
            C("probability", "float", "0..1", non_negative=True),
            C("forecast_category", "str", enum="forecast_category"),
            _req("type", "str", enum="opportunity_type"),
            C("campaign_id", "str", "primary campaign source", references="campaigns.campaign_id"),
            C("lead_id", "str", references="leads.lead_id"),
            C("lost_reason", "str"),
        ),
        ("opportunity_id",),
        time_column="created_at",
        ordered=(("created_at", "close_date"),),
    ),
    Table(
        "opportunity_history",
        "Snapshots of an opportunity at every change (stage, amount, probability, close date, category).",
        (
            _req("opportunity_id", "str", references="opportunities.opportunity_id"),
            _req("changed_at", "datetime"),
            _req("stage", "str", enum="stage"),
            _req("amount", "float", currency="currency", non_negative=True),
            _req("currency", "str"),
            C("probability", "float", non_negative=True),
            C("close_date", "date"),
            C("forecast_category", "str", enum="forecast_category"),
        ),
        ("opportunity_id", "changed_at"),
        time_column="changed_at",
    ),
    Table(
        "activities",
        "Calls, e-mails, meetings, demos and tasks logged by users.",
        (
            _req("activity_id", "str"),
            _req("type", "str", enum="activity_type"),
            _req("occurred_at", "datetime"),
            _req("owner_id", "str", references="users.user_id"),
            C("account_id", "str", references="accounts.account_id"),
            C("opportunity_id", "str", references="opportunities.opportunity_id"),
            C("lead_id", "str", references="leads.lead_id"),
        ),
        ("activity_id",),
        time_column="occurred_at",
    ),
    Table(
        "touchpoints",
        "Marketing interactions of a person (a lead, or a contact once converted) with a channel.",
        (
            _req("touchpoint_id", "str"),
            _req("occurred_at", "datetime"),
            C("lead_id", "str", references="leads.lead_id"),
            C("contact_id", "str", references="contacts.contact_id"),
            _req("channel", "str", enum="channel"),
            C("campaign_id", "str", references="campaigns.campaign_id"),
            _req("interaction", "str", enum="interaction"),
        ),
        ("touchpoint_id",),
        time_column="occurred_at",
    ),
    Table(
        "cases",
        "Customer service tickets. Status is the current one; the history is in case_events.",
        (
            _req("case_id", "str"),
            _req("account_id", "str", references="accounts.account_id"),
            C("contact_id", "str", references="contacts.contact_id"),
            _req("created_at", "datetime"),
            _req("channel", "str", enum="case_channel"),
            _req("priority", "str", enum="priority"),
            C("category", "str"),
            C("team_id", "str", references="teams.team_id"),
            C("agent_id", "str", references="users.user_id"),
            _req("status", "str", enum="case_status"),
            C("closed_at", "datetime", "last time the case was solved; null while open"),
        ),
        ("case_id",),
        time_column="created_at",
        ordered=(("created_at", "closed_at"),),
    ),
    Table(
        "case_events",
        "Everything that happened to a case: status changes and replies, with timestamps.",
        (
            _req("event_id", "str"),
            _req("case_id", "str", references="cases.case_id"),
            _req("occurred_at", "datetime"),
            _req("event_type", "str", enum="case_event_type"),
            C("status", "str", "the new status, for status_change events", enum="case_status"),
            C("agent_id", "str", references="users.user_id"),
            C("is_public", "bool", "visible to the customer (replies)"),
        ),
        ("event_id",),
        time_column="occurred_at",
    ),
    Table(
        "surveys",
        "CSAT (1-5), NPS (0-10) and CES (1-7) responses; score null when sent but not answered.",
        (
            _req("survey_id", "str"),
            _req("type", "str", enum="survey_type"),
            _req("sent_at", "datetime"),
            C("responded_at", "datetime"),
            C("score", "int", non_negative=True),
            C("case_id", "str", references="cases.case_id"),
            C("account_id", "str", references="accounts.account_id"),
            C("contact_id", "str", references="contacts.contact_id"),
        ),
        ("survey_id",),
        time_column="sent_at",
        ordered=(("sent_at", "responded_at"),),
    ),
    Table(
        "orders",
        "Purchases (for RFM and CLV).",
        (
            _req("order_id", "str"),
            _req("account_id", "str", references="accounts.account_id"),
            _req("ordered_at", "datetime"),
            _req("amount", "float", currency="currency", non_negative=True),
            _req("currency", "str"),
            C("product_id", "str", references="products.product_id"),
            C("status", "str", enum="order_status"),
        ),
        ("order_id",),
        time_column="ordered_at",
    ),
    Table(
        "subscriptions",
        "Recurring revenue per account and product (for churn, NRR, GRR). end_date null while active.",
        (
            _req("subscription_id", "str"),
            _req("account_id", "str", references="accounts.account_id"),
            _req("product_id", "str", references="products.product_id"),
            _req("start_date", "date"),
            C("end_date", "date"),
            _req("mrr", "float", currency="currency", non_negative=True),
            _req("currency", "str"),
        ),
        ("subscription_id",),
        time_column="start_date",
        ordered=(("start_date", "end_date"),),
    ),
    Table(
        "targets",
        "Targets per period (first day), level and entity, for a catalog KPI. "
        "entity_id is 'company', a department name, a team_id or a user_id.",
        (
            _req("period", "date", "first day of the period"),
            _req("grain", "str", enum="grain"),
            _req("level", "str", enum="target_level"),
            _req("entity_id", "str"),
            _req("kpi", "str"),
            _req("value", "float"),
        ),
        ("period", "grain", "level", "entity_id", "kpi"),
        time_column="period",
    ),
    Table(
        "fx_rates",
        "Daily exchange rates: one unit of currency = rate_to_base units of the base currency.",
        (
            _req("date", "date"),
            _req("currency", "str"),
            _req("rate_to_base", "float", non_negative=True),
        ),
        ("date", "currency"),
        time_column="date",
    ),
)

TABLES: MappingProxyType[str, Table] = MappingProxyType({t.name: t for t in _TABLES})
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)

# Order in which tables can be loaded so that every foreign key points to an earlier table
# (self-references and the leads <-> opportunities/accounts cycle are checked after loading).
LOAD_ORDER: tuple[str, ...] = (
    "teams",
    "users",
    "accounts",
    "products",
    "campaigns",
    "leads",
    "contacts",
    "opportunities",
    "opportunity_history",
    "activities",
    "marketing_spend",
    "touchpoints",
    "cases",
    "case_events",
    "surveys",
    "orders",
    "subscriptions",
    "targets",
    "fx_rates",
)
assert set(LOAD_ORDER) == set(TABLE_NAMES), "LOAD_ORDER must list every table"


def table(name: str) -> Table:
    """Look up a canonical table, with a suggestion when the name is wrong."""
    try:
        return TABLES[name]
    except KeyError:
        raise ConfigError(
            f"There is no canonical table {name!r}.{suggest(name, TABLE_NAMES)}"
            f" The tables are: {', '.join(TABLE_NAMES)}."
        ) from None


def empty_frame(name: str) -> pl.DataFrame:
    return pl.DataFrame(schema=table(name).polars_schema)


def _cast(name: str, target: Column, current: pl.DataType | None) -> pl.Expr:
    expr = pl.col(name)
    if current == target.polars_dtype:
        return expr
    if current == pl.String():
        if target.dtype == "date":
            return expr.str.to_date(strict=False).alias(name)
        if target.dtype == "datetime":
            return expr.str.to_datetime(time_unit="us", strict=False).alias(name)
        if target.dtype == "bool":
            low = expr.str.to_lowercase().str.strip_chars()
            return (
                pl.when(low.is_in(["true", "t", "1", "yes", "y"]))
                .then(True)
                .when(low.is_in(["false", "f", "0", "no", "n"]))
                .then(False)
                .otherwise(None)
                .alias(name)
            )
    # Values that do not convert become null here; crmlib.validate reports them with their rows.
    return expr.cast(target.polars_dtype, strict=False)


def conform(frame: pl.DataFrame | pl.LazyFrame, name: str):
    """Select the canonical columns in canonical order and cast them to canonical types.

    Columns missing from ``frame`` come back as nulls; strings are parsed into dates, datetimes and
    booleans (ISO formats). Validation, not this function, reports values that do not parse.
    """
    t = table(name)
    have = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    exprs = [
        _cast(c.name, c, have[c.name]) if c.name in have else pl.lit(None, c.polars_dtype).alias(c.name)
        for c in t.columns
    ]
    return frame.select(exprs)


def create_table_sql(name: str, quote: str = '"') -> str:
    """A portable ``CREATE TABLE`` statement (DuckDB, PostgreSQL, SQLite) with the primary key."""
    t = table(name)
    cols = [
        f"{quote}{c.name}{quote} {SQL_TYPES[c.dtype]}{'' if c.nullable else ' NOT NULL'}" for c in t.columns
    ]
    pk = ", ".join(f"{quote}{k}{quote}" for k in t.primary_key)
    cols.append(f"PRIMARY KEY ({pk})")
    return f"CREATE TABLE {quote}{name}{quote} (\n  " + ",\n  ".join(cols) + "\n)"
