"""One notebook, two faces: a static report under papermill, a reactive dashboard under Voila.

A notebook makes one :class:`Dashboard` from its parameters and shows each section through it::

    dash = crmlib.dashboard.Dashboard(crm, start=start, end=end, grain=grain, team=team,
                                      lang=lang, interactive=interactive)
    dash.filter_bar()
    dash.show(crmlib.sales.funnel, crmlib.charts_sales.plot_funnel)

``show(compute, render, drill=None, **fixed)`` calls ``compute(crm, **filters)`` (only the filters its
signature names, plus ``fixed``), then ``render(result, lang=lang)``. Functions written for a ``period``
and a ``filters`` mapping (the service area) get ``period=(start, end)`` and ``filters=where(...)``, where
``where`` is the area's selection builder given to the Dashboard (``crmlib.service.selection``).

* ``interactive=False`` (papermill): ``show`` returns the rendered object (a ``go.Figure``, a great_tables
  ``GT``, KPI cards), so the report holds plain, self-contained output.
* ``interactive=True`` (Voila, JupyterLab): ``filter_bar`` draws widgets for the filters the notebook
  passed; a change re-runs only the sections whose ``compute`` takes that filter (language changes
  re-render every section). Figures are :class:`crmlib.chart_widget.Chart` widgets redrawn in place
  with ``Plotly.react`` from one message (no flicker, no page reload; one copy of plotly.js per page);
  tables and cards are ``ipywidgets.HTML`` whose value is replaced. No ``Output`` widgets: Voila 0.5's
  progressive render stalled now and then on cells writing into them.
* Drill-down (interactive): ``drill(crm, point, **filters)`` is called when a bar, funnel stage or cell of
  the section's figure is clicked, with ``point = {"x", "y", "index", "trace", "customdata"}`` of the
  clicked point and the dashboard's current filters; the records it returns are shown under the figure
  with their count and CSV / Excel downloads (:func:`records_view`).
* A section whose compute finds nothing shows "no data for this selection"; a section that fails shows a
  one-line message in place (the traceback goes to the server log, never to the page) and the rest of
  the dashboard keeps working.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from . import schema
from .cards import no_data
from .errors import CrmlibError
from .i18n import check_lang

log = logging.getLogger("crmlib.dashboard")

FILTER_LABELS = {
    "start": {"en": "From", "zh": "开始"},
    "end": {"en": "To", "zh": "结束"},
    "as_of": {"en": "As of", "zh": "截至"},
    "grain": {"en": "Grain", "zh": "粒度"},
    "team": {"en": "Team", "zh": "团队"},
    "region": {"en": "Region", "zh": "区域"},
    "product": {"en": "Product", "zh": "产品"},
    "channel": {"en": "Channel", "zh": "渠道"},
    "priority": {"en": "Priority", "zh": "优先级"},
    "segment": {"en": "Segment", "zh": "客户分层"},
    "hours": {"en": "Hours", "zh": "计时"},
    "conversion_event": {"en": "Conversion", "zh": "转化事件"},
    "lead_created": {"en": "Lead created", "zh": "线索创建"},
    "opportunity_created": {"en": "Opportunity created", "zh": "商机创建"},
    "closed_won": {"en": "Deal won", "zh": "赢单"},
    "business": {"en": "Business hours", "zh": "工作时间"},
    "calendar": {"en": "Calendar hours", "zh": "日历时间"},
    "lang": {"en": "Language", "zh": "语言"},
    "all": {"en": "All", "zh": "全部"},
    "records": {"en": "records", "zh": "条记录"},
    "showing": {"en": "showing the first", "zh": "显示前"},
    "download": {"en": "Download", "zh": "下载"},
    "close": {"en": "Close", "zh": "关闭"},
    "failed": {"en": "This section could not be computed", "zh": "此部分无法计算"},
    "updating": {"en": "Updating…", "zh": "更新中…"},
    # the grain filter's choices
    "day": {"en": "day", "zh": "日"},
    "week": {"en": "week", "zh": "周"},
    "month": {"en": "month", "zh": "月"},
    "quarter": {"en": "quarter", "zh": "季度"},
    "year": {"en": "year", "zh": "年"},
}
DATE_FILTERS = ("start", "end", "as_of")


def workers_from_env() -> int:
    """Sections of one update computed at once (threads): ``CRMLIB_DASHBOARD_WORKERS`` (1 computes them in
    turn), else one per core, at most 2 (a dashboard kernel shares the server's cores with other viewers'
    kernels). A value that is not a whole number is ignored, with a warning in the server log."""
    default = min(2, os.cpu_count() or 1)
    raw = os.environ.get("CRMLIB_DASHBOARD_WORKERS", "").strip()
    if not raw:
        return default
    try:
        return max(1, int(raw))
    except ValueError:
        log.warning("CRMLIB_DASHBOARD_WORKERS=%r is not a whole number: computing %d section(s) at a time",
                    raw, default)
        return default


WORKERS = workers_from_env()


def _label(key: str, lang: str) -> str:
    return FILTER_LABELS.get(key, {}).get(lang, key)


def _accepts(fn: Callable) -> tuple[set[str], bool]:
    params = inspect.signature(fn).parameters.values()
    names = {p.name for p in params}
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    return names, var_kw


def _is_empty(result: Any) -> bool:
    if isinstance(result, pl.DataFrame):
        return result.height == 0
    return result is None


@dataclass
class Section:
    compute: Callable
    render: Callable | None
    fixed: dict
    uses: set[str]
    drill: Callable | None = None
    render_kw: dict = field(default_factory=dict)
    widget: Any = None  # the ipywidgets container (interactive mode)
    figure: Any = None  # the Chart shown, when the section is a figure
    output: Any = None  # an HTML widget for anything else (cards, tables, messages)
    drill_output: Any = None  # the drill-down records under the figure (an HTML widget)
    last_drill: pl.DataFrame | None = None


@dataclass
class Dashboard:
    """Filters taken from the notebook's parameters, and the sections that depend on them."""

    crm: Any
    lang: str = "en"
    interactive: bool = True
    where: Callable | None = None
    enums: dict[str, str] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)
    _controls: dict[str, Any] = field(default_factory=dict, repr=False)
    _sections: list[Section] = field(default_factory=list, repr=False)
    _bar: Any = field(default=None, repr=False)
    _status: Any = field(default=None, repr=False)
    _relabelling: bool = field(default=False, repr=False)
    updates: int = 0

    def __init__(self, crm, *, lang: str = "en", interactive: bool = True, where: Callable | None = None,
                 enums: dict[str, str] | None = None, **filters):
        """``filters`` are the notebook's filter parameters; ``enums`` names the schema enum whose values a
        filter offers when the area means something else by it (the service area's ``channel`` is a
        ``case_channel``); ``where`` builds the area's filter mapping (see the module docstring)."""
        check_lang(lang)
        self.enums = {"region": "region", "channel": "channel", "priority": "priority", "segment": "segment",
                      **(enums or {})}
        for name, enum in self.enums.items():
            if enum not in schema.ENUMS:
                raise ValueError(f"Dashboard enums: {name}={enum!r} is not one of {', '.join(schema.ENUMS)}.")
        self.crm = crm
        self.lang = lang
        self.interactive = interactive
        self.where = where
        self.filters = dict(filters)
        self._sections = []
        self._bar = None
        self._status = None
        self._controls = {}
        self.updates = 0  # filter changes fully drawn (the status element's data-updates)
        self._relabelling = False

    # -- computing ------------------------------------------------------------------------------
    def kwargs_for(self, fn: Callable, fixed: dict | None = None) -> dict:
        """The filters ``fn`` takes, by name; ``period`` and ``filters`` built from start/end and ``where``."""
        names, var_kw = _accepts(fn)
        values = {**self.filters, "lang": self.lang}
        chosen = {k: v for k, v in values.items() if var_kw or k in names}
        if "period" in names and "period" not in self.filters and {"start", "end"} & set(self.filters):
            chosen["period"] = (self.filters.get("start") or None, self.filters.get("end") or None)
        if "filters" in names and "filters" not in self.filters and self.where is not None:
            taken = _accepts(self.where)[0]
            chosen["filters"] = self.where(**{k: v for k, v in self.filters.items() if k in taken})
        return {**chosen, **(fixed or {})}

    def uses(self, fn: Callable) -> set[str]:
        """The filter names whose change re-runs ``fn``."""
        names, var_kw = _accepts(fn)
        if var_kw:
            return set(self.filters)
        used = names & set(self.filters)
        if "period" in names:
            used |= {"start", "end"} & set(self.filters)
        if "filters" in names and self.where is not None:
            used |= _accepts(self.where)[0] & set(self.filters)
        return used

    def compute(self, compute: Callable, render: Callable | None = None, *, render_kw: dict | None = None,
                **fixed) -> Any:
        """Run one section now and return what it shows (static mode uses this directly)."""
        try:
            result = compute(self.crm, **self.kwargs_for(compute, fixed))
            if _is_empty(result):
                return self._empty(result, render, render_kw)
            if render is None:
                return result
            return render(result, **self.kwargs_for(render, render_kw))
        except CrmlibError as exc:
            return _message(f"{_label('failed', self.lang)}: {exc}")
        except Exception:  # noqa: BLE001 - a stakeholder never sees a traceback
            log.exception("dashboard section %s failed", getattr(compute, "__name__", compute))
            return _message(_label("failed", self.lang) + ".")

    def _empty(self, result, render, render_kw):
        """An empty result: the renderer's own empty state (a titled chart or table saying there is no
        data, an empty worklist keeping its title), or "no data for this selection" when there is no
        renderer or it cannot draw nothing."""
        if render is not None and result is not None:
            try:
                return render(result, **self.kwargs_for(render, render_kw))
            except Exception:  # noqa: BLE001 - a renderer without an empty state
                log.debug("renderer %s has no empty state", getattr(render, "__name__", render), exc_info=True)
        return no_data(self.lang)

    # -- the two faces ----------------------------------------------------------------------------
    def show(self, compute: Callable, render: Callable | None = None, *, drill: Callable | None = None,
             render_kw: dict | None = None, **fixed):
        """A section: the rendered result (static), or a widget that follows the filters (interactive).

        ``fixed`` are further arguments of ``compute``, ``render_kw`` of ``render``;
        ``drill(crm, point, **filters)`` gives the records behind a clicked point (interactive only)."""
        if not self.interactive:
            return self.compute(compute, render, render_kw=render_kw, **fixed)
        import ipywidgets as w

        uses = self.uses(compute) | (self.uses(drill) if drill else set())
        section = Section(compute, render, fixed, uses, drill, render_kw or {})
        section.widget = w.VBox(layout=w.Layout(width="100%"))
        section.widget.add_class("crmlib-section")
        if drill is not None:
            section.drill_output = w.HTML(layout=w.Layout(width="100%"))
            section.drill_output.add_class("crmlib-drill")
        self._draw(section)
        self._sections.append(section)
        return section.widget

    # -- drill-down -----------------------------------------------------------------------------------
    def drill_records(self, index: int, point: dict) -> pl.DataFrame:
        """The records behind ``point`` of section ``index`` under the current filters."""
        section = self._sections[index]
        if section.drill is None:
            raise ValueError(f"section {index} has no drill-down")
        names, var_kw = _accepts(section.drill)
        fixed = {k: v for k, v in section.fixed.items() if var_kw or k in names}
        return section.drill(self.crm, point, **self.kwargs_for(section.drill, fixed))

    def drill_view(self, index: int, point: dict):
        """What the drill-down of section ``index`` shows for ``point``: the records view, or a one-line
        message when it fails (the traceback goes to the server log)."""
        section = self._sections[index]
        section.last_drill = None
        try:
            records = self.drill_records(index, point)
        except CrmlibError as exc:
            return _message(f"{_label('failed', self.lang)}: {exc}")
        except Exception:  # noqa: BLE001 - a stakeholder never sees a traceback
            log.exception("drill-down of section %s failed", index)
            return _message(_label("failed", self.lang) + ".")
        section.last_drill = records
        return records_view(records, self.lang, title=_point_title(point))

    def drill(self, index: int, point: dict) -> None:
        """Show the records behind ``point`` under section ``index`` (what a click does)."""
        self._sections[index].drill_output.value = html_of(self.drill_view(index, point))

    def _clicked(self, section: Section):
        """The chart's click callback: drill into the clicked point of ``section``."""

        def handler(point: dict) -> None:
            self.drill(self._sections.index(section), point)

        return handler

    def _shown(self, section: Section) -> tuple[Any, str | None]:
        """What ``section`` shows now, and a figure's JSON (the part of a re-draw that may run in a worker
        thread: nothing here touches a widget)."""
        import plotly.graph_objects as go

        shown = self.compute(section.compute, section.render, render_kw=section.render_kw, **section.fixed)
        if isinstance(shown, go.Figure):
            return shown, shown.to_json()
        return shown, html_of(shown)

    def _draw(self, section: Section, shown: tuple[Any, str | None] | None = None) -> None:
        """Re-draw ``section`` (with ``shown`` from :meth:`_shown` when already computed)."""
        import ipywidgets as w
        import plotly.graph_objects as go

        from .chart_widget import Chart

        shown, text = shown if shown is not None else self._shown(section)
        if isinstance(shown, go.Figure):
            if section.drill_output is not None:
                section.drill_output.value = ""
                section.last_drill = None
            if section.figure is not None:
                section.figure.show(shown, text)  # one message, redrawn in place with Plotly.react
                return
            section.figure = Chart(layout=w.Layout(width="100%"))
            section.figure.show(shown, text)
            section.output = None
            if section.drill is not None:
                section.figure.on_click(self._clicked(section))
                section.widget.children = (section.figure, section.drill_output)
            else:
                section.widget.children = (section.figure,)
            return
        section.figure = None
        if section.output is None:
            section.output = w.HTML(layout=w.Layout(width="100%"))
            section.widget.children = (section.output,)
        section.output.value = text

    def update(self, **changes) -> list[int]:
        """Set filters and re-draw the sections that use them; returns the indexes re-drawn."""
        if "lang" in changes:
            self.lang = check_lang(changes.pop("lang"))
            touched = list(range(len(self._sections)))
            self._relabel()
        else:
            touched = []
        self.filters.update(changes)
        for i, section in enumerate(self._sections):
            if i not in touched and section.uses & set(changes):
                touched.append(i)
        todo = [self._sections[i] for i in sorted(touched)]
        self._show_status(busy=True)
        try:
            with self._batch():  # the sections re-drawn read the data as one moment (crm.batch)
                if len(todo) > 1 and WORKERS > 1:
                    # computed WORKERS at a time (polars and DuckDB work outside the GIL), each drawn as
                    # soon as it is ready, by this thread: widgets are only touched here
                    from concurrent.futures import ThreadPoolExecutor, as_completed

                    with ThreadPoolExecutor(WORKERS, thread_name_prefix="crmlib-dashboard") as pool:
                        running = {pool.submit(self._shown, section): section for section in todo}
                        for done in as_completed(running):
                            self._draw(running[done], done.result())
                else:
                    for section in todo:
                        self._draw(section)
        finally:
            self.updates += 1
            self._show_status(busy=False)
        return sorted(touched)

    def _show_status(self, busy: bool) -> None:
        """Shows "Updating…" in the filter bar while sections re-draw; ``data-updates`` counts the
        finished updates (a browser test waits for it)."""
        if self._status is not None:
            text = _label("updating", self.lang) if busy else ""
            self._status.value = (f"<span class='crmlib-status-text' data-busy='{int(busy)}' "
                                  f"data-updates='{self.updates}'>{text}</span>")

    def _batch(self):
        return self.crm.batch() if self.crm is not None else contextlib.nullcontext()

    # -- the filter bar -----------------------------------------------------------------------------
    def options(self, name: str) -> list[tuple[str, str]]:
        """(label, value) choices for a filter; '' means all."""
        all_ = [(_label("all", self.lang), "")]
        if name == "grain":
            return [(_label(g, self.lang), g) for g in schema.ENUMS["grain"]]
        if name == "conversion_event":
            return [(_label(e, self.lang), e) for e in ("lead_created", "opportunity_created", "closed_won")]
        if name == "hours":
            return [(_label(h, self.lang), h) for h in ("business", "calendar")]
        if name == "team":
            teams = self.crm.table("teams").select("team_id", "name").sort("team_id").collect()
            return all_ + [(f"{n} ({t})", t) for t, n in teams.iter_rows()]
        if name == "product":
            prods = self.crm.table("products").select("product_id", "name").sort("product_id").collect()
            return all_ + [(n, p) for p, n in prods.iter_rows()]
        enum = self.enums.get(name)
        if enum:
            return all_ + [(v, v) for v in schema.ENUMS[enum]]
        return []

    def filter_bar(self):
        """The filters as widgets (interactive), or a one-line caption of the selection (static)."""
        if not self.interactive:
            return _caption(self.filters, self.lang)
        import ipywidgets as w

        controls = []
        for name, value in self.filters.items():
            label = _label(name, self.lang)
            if name in DATE_FILTERS:
                ctl = w.DatePicker(description=label, value=_to_date(value))
            elif self.options(name):
                choices = self.options(name)
                values = [v for _, v in choices]
                ctl = w.Dropdown(description=label, options=choices, value=value if value in values else values[0])
            else:
                ctl = w.Text(description=label, value=str(value))
            ctl.observe(self._on_change(name), names="value")
            ctl.add_class(f"crmlib-filter-{name}")
            self._controls[name] = ctl
            controls.append(ctl)
        lang = w.ToggleButtons(options=[("English", "en"), ("中文", "zh")], value=self.lang,
                               description=_label("lang", self.lang))
        lang.observe(self._on_change("lang"), names="value")
        lang.add_class("crmlib-filter-lang")
        self._controls["lang"] = lang
        controls.append(lang)
        self._status = w.HTML(layout=w.Layout(align_self="center", margin="0 0 0 12px"))
        self._status.add_class("crmlib-status")
        self._show_status(busy=False)
        controls.append(self._status)
        self._bar = w.HBox(controls, layout=w.Layout(flex_flow="row wrap"))
        self._bar.add_class("crmlib-filter-bar")
        return self._bar

    def _relabel(self) -> None:
        """Filter labels and choices ('All', the grains) in the current language (the values stay).

        New options make a dropdown jump to its first choice and back; those two value changes are
        not filter changes (they would re-run every section twice, the first time with the wrong
        value), so the change handlers ignore them."""
        self._relabelling = True
        try:
            for name, ctl in self._controls.items():
                ctl.description = _label(name, self.lang)
                if name != "lang" and hasattr(ctl, "options") and name not in DATE_FILTERS:
                    choices = self.options(name)
                    if choices and [v for _, v in choices] == [v for _, v in ctl.options]:
                        value = ctl.value
                        ctl.options = choices
                        ctl.value = value
        finally:
            self._relabelling = False

    def _on_change(self, name: str):
        def handler(change):
            if self._relabelling:
                return
            value = change["new"]
            if isinstance(value, dt.date):
                value = value.isoformat()
            self.update(**{name: value})

        return handler


def records_view(records: pl.DataFrame, lang: str = "en", title: str = "", limit: int = 200):
    """Drill-down records: their count, CSV and Excel downloads (all rows) and the first ``limit`` rows."""
    from html import escape

    from .cards import Cards

    n = records.height
    links = " · ".join(
        f"<a class='crmlib-download-{kind}' download='records.{kind}' href='{href}'>{kind.upper()}</a>"
        for kind, href in download_links(records).items()
    )
    head = (f"<div class='crmlib-drill-head'><b class='crmlib-drill-count' data-count='{n}'>{n:,}</b> "
            f"{_label('records', lang)}{' · ' + escape(title) if title else ''} · {_label('download', lang)}: "
            f"{links}</div>")
    shown = records.head(limit)
    note = (f"<div style='color:#57606a'>{_label('showing', lang)} {limit:,}</div>" if n > limit else "")
    return Cards(head + note + _html_table(shown))


def html_of(shown: Any) -> str:
    """HTML for an ``ipywidgets.HTML``: KPI cards, great_tables tables, messages, data frames."""
    from html import escape

    if isinstance(shown, str):
        return shown
    html = getattr(shown, "html", None)
    if isinstance(html, str):
        return html
    as_raw = getattr(shown, "as_raw_html", None)  # great_tables: its own scoped <style>, no scripts
    if callable(as_raw):
        return as_raw()
    repr_html = getattr(shown, "_repr_html_", None)
    if callable(repr_html):
        return repr_html()
    return f"<pre>{escape(str(shown))}</pre>"


def download_links(records: pl.DataFrame) -> dict[str, str]:
    """``{"csv": data-URI, "xlsx": data-URI}`` holding every row of ``records``."""
    import base64
    import io

    csv = base64.b64encode(records.write_csv().encode("utf-8-sig")).decode("ascii")
    buf = io.BytesIO()
    records.write_excel(buf, autofit=True)
    xlsx = base64.b64encode(buf.getvalue()).decode("ascii")
    return {
        "csv": f"data:text/csv;charset=utf-8;base64,{csv}",
        "xlsx": f"data:application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;base64,{xlsx}",
    }


def _html_table(frame: pl.DataFrame) -> str:
    from html import escape

    def cell(v) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:,.2f}"
        return escape(str(v))

    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{escape(c)}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td style='padding:2px 8px'>{cell(v)}</td>" for v in row) + "</tr>"
        for row in frame.iter_rows()
    )
    return (f"<div style='max-height:360px;overflow:auto'><table class='crmlib-drill-table' "
            f"style='border-collapse:collapse;font-size:12px'><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")


def _point_title(point: dict) -> str:
    """What was clicked, for the drill-down heading: the category (and period) of the point."""
    parts = [str(point[k]) for k in ("trace", "y", "x") if isinstance(point.get(k), str)]
    if not parts and isinstance(point.get("customdata"), str):
        parts = [point["customdata"]]
    return " · ".join(parts)


def _to_date(value) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _message(text: str):
    from html import escape

    from .cards import Cards

    return Cards(f"<div class='crmlib-section-error' style='color:#cf222e'>{escape(text)}</div>")


def _caption(filters: dict, lang: str):
    from html import escape

    from .cards import Cards

    parts = [f"{_label(k, lang)}: {escape(_label(v, lang) if k == 'grain' else str(v))}"
             for k, v in filters.items() if v not in ("", None)]
    return Cards(f"<div class='crmlib-selection' style='color:#57606a'>{' · '.join(parts)}</div>")
