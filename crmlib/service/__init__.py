"""Customer service analytics: response and resolution times, SLA compliance, backlog, satisfaction.

Everything is computed from ``cases`` and their history in ``case_events``, as of an instant ``T``
(default: the latest timestamp of the data, or the end of the period asked when that is earlier;
events after ``T`` are ignored). A case only in ``case_events`` (a plain helpdesk event log imported
with a mapping file) is a case too: created at its first event, without priority, channel or team.

Definitions (``hours="business"`` measures in the working hours of ``parameters/calendar.yaml``,
``"calendar"`` counts every hour; see :mod:`crmlib.calendars`):

* **Status timeline.** A case is ``new`` from its creation to its first status change, then in the
  status of each ``status_change`` until the next one (events before the creation count from the
  creation). Done = ``solved`` or ``closed``. A case without any status event takes ``closed_at`` of
  ``cases`` as its solve.
* **First response time**: creation → first public agent reply (``agent_reply`` whose ``is_public``
  is not false). In a log without any ``agent_reply`` event (status changes only), the first change to
  a status other than ``new`` stands in for it.
* **First resolution time**: creation → first solve (a change into solved/closed from another status).
  **Full resolution time**: creation → the last solve, for cases done as of ``T`` (after reopens).
* **Requester wait time**: time in ``new``, ``open`` and ``on_hold``; **agent wait time**: time in
  ``pending`` (waiting on the customer); up to ``T`` for cases still open.
* **Reopen**: a change from solved/closed to another status. Reopen rate = cases first solved in the
  period that were reopened (by ``T``) / cases first solved in the period.
* **Backlog**: cases not done at the end of each period (their status then, from the timeline), by age
  (calendar time since creation) in :data:`AGE_BUCKETS`.
* **SLA** (``parameters/sla.yaml``, :func:`load_sla`): per priority a first-response and a resolution
  target, in the policy's clock. First response is achieved by the first public reply or the first
  solve, whichever comes first. The resolution clock runs while the case is neither done nor in a
  pause status (default ``pending``) and is achieved when the case is done; reopening restarts it where
  it stopped. A target is **breached** the instant its clock passes the target (also while the case is
  open), **met** when achieved within it, else **pending**. A case meets its SLA when every target of its
  policy is met; it breaches at its first breach. Each outcome is dated by when it became known (the
  achievement, or the breach instant): SLA compliance of a period = met / (met + breached) among the
  outcomes settled in it.
* **About to breach**: open cases with a pending target whose remaining time is under a threshold.
* CSAT, NPS and survey response rates come from the KPI catalog (``crm.kpis``).

Filters and groups use the catalog's dimensions (``team``, ``agent``, ``priority``, ``case_channel``,
``case_category``, ``region``, ``segment``); an empty string or empty list means "all".
"""

from __future__ import annotations

from ._common import AGE_BUCKETS, SLA_METRICS, TIME_METRICS, selection
from .analytics import (
    about_to_breach,
    backlog,
    sla_cases,
    sla_report,
    time_summary,
    time_values,
    trends,
    volume,
)
from .boards import LEADERBOARD_METRICS, leaderboard
from .facts import case_facts, clear_cache
from .providers import (
    card_kpis,
    first_response_business_hours,
    first_response_calendar_hours,
    first_response_sla,
    kpi_summary,
    reopen_rate,
    resolution_business_hours,
    resolution_sla,
    satisfaction,
    sla_breaches,
    sla_compliance,
)
from .sla import Policy, Sla, load_sla, sla_from_dict

__all__ = [
    "AGE_BUCKETS", "LEADERBOARD_METRICS", "SLA_METRICS", "TIME_METRICS", "Policy", "Sla", "about_to_breach",
    "backlog", "card_kpis", "case_facts", "clear_cache", "kpi_summary", "leaderboard", "load_sla", "satisfaction",
    "selection", "sla_cases", "sla_from_dict", "sla_report", "time_summary", "time_values", "trends", "volume",
    # providers of the catalog's external KPIs (crmlib/kpis/service.yaml)
    "first_response_business_hours", "first_response_calendar_hours", "first_response_sla", "reopen_rate",
    "resolution_business_hours", "resolution_sla", "sla_breaches", "sla_compliance",
]
