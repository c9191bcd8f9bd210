"""One notebook, two faces: a static report under papermill, a reactive dashboard under Voila.

A notebook makes one :class:`Dashboard` from its parameters and shows each section through it::

    dash = crmlib.dashboard.Dashboard(crm, start=start, end=end, grain=grain, team=team,
                                      lang=lang, interactive=interactive)
    dash.filter_bar()
    dash.show(crmlib.sales.funnel, crmlib.charts_sales.plot_funnel)

``show(compute, render, **fixed)`` calls ``compute(crm, **filters)`` (only the filters its signature
names, plus ``fixed``), then ``render(result, lang=lang)``.

* ``interactive=False`` (papermill): ``show`` returns the rendered object (a ``go.Figure``, a great_tables
  ``GT``, KPI cards), so the report holds plain, self-contained output.
* ``interactive=True`` (Voila, JupyterLab): ``filter_bar`` draws widgets for the filters the notebook
  passed; a change re-runs only the sections whose ``compute`` takes that filter (language changes
  re-render every section). Figures are ``go.FigureWidget``s updated in place in one
  ``batch_update`` (no flicker, no page reload); tables and cards are redrawn in their ``Output``.
* A section whose compute finds nothing shows "no data for this selection"; a section that fails shows a
  one-line message in place (the traceback goes to the server log, never to the page) and the rest of
  the dashboard keeps working.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
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
    "lang": {"en": "Language", "zh": "语言"},
    "all": {"en": "All", "zh": "全部"},
    "failed": {"en": "This section could not be computed", "zh": "此部分无法计算"},
}
DATE_FILTERS = ("start", "end", "as_of")


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
    widget: Any = None  # the ipywidgets container (interactive mode)
    figure: Any = None  # the FigureWidget shown, when the section is a figure
    output: Any = None  # an Output for anything else


@dataclass
class Dashboard:
    """Filters taken from the notebook's parameters, and the sections that depend on them."""

    crm: Any
    lang: str = "en"
    interactive: bool = True
    filters: dict[str, Any] = field(default_factory=dict)
    _sections: list[Section] = field(default_factory=list, repr=False)
    _bar: Any = field(default=None, repr=False)

    def __init__(self, crm, *, lang: str = "en", interactive: bool = True, **filters):
        check_lang(lang)
        self.crm = crm
        self.lang = lang
        self.interactive = interactive
        self.filters = dict(filters)
        self._sections = []
        self._bar = None

    # -- computing ------------------------------------------------------------------------------
    def kwargs_for(self, fn: Callable, fixed: dict | None = None) -> dict:
        names, var_kw = _accepts(fn)
        values = {**self.filters, "lang": self.lang}
        chosen = {k: v for k, v in values.items() if var_kw or k in names}
        return {**chosen, **(fixed or {})}

    def compute(self, compute: Callable, render: Callable | None = None, **fixed) -> Any:
        """Run one section now and return what it shows (static mode uses this directly)."""
        try:
            result = compute(self.crm, **self.kwargs_for(compute, fixed))
            if _is_empty(result):
                return no_data(self.lang)
            if render is None:
                return result
            return render(result, **self.kwargs_for(render, {}))
        except CrmlibError as exc:
            return _message(f"{_label('failed', self.lang)}: {exc}")
        except Exception:  # noqa: BLE001 - a stakeholder never sees a traceback
            log.exception("dashboard section %s failed", getattr(compute, "__name__", compute))
            return _message(_label("failed", self.lang) + ".")

    # -- the two faces ----------------------------------------------------------------------------
    def show(self, compute: Callable, render: Callable | None = None, **fixed):
        """A section: the rendered result (static), or a widget that follows the filters (interactive)."""
        if not self.interactive:
            return self.compute(compute, render, **fixed)
        import ipywidgets as w

        names, var_kw = _accepts(compute)
        uses = set(self.filters) if var_kw else names & set(self.filters)
        section = Section(compute, render, fixed, uses)
        section.widget = w.VBox(layout=w.Layout(width="100%"))
        self._draw(section)
        self._sections.append(section)
        return section.widget

    def _draw(self, section: Section) -> None:
        import ipywidgets as w
        import plotly.graph_objects as go
        from IPython.display import display

        shown = self.compute(section.compute, section.render, **section.fixed)
        if isinstance(shown, go.Figure) and not isinstance(shown, go.FigureWidget):
            if section.figure is not None and _same_shape(section.figure, shown):
                with section.figure.batch_update():
                    for old, new in zip(section.figure.data, shown.data, strict=True):
                        old.update(new.to_plotly_json(), overwrite=True)
                    section.figure.layout.update(shown.layout.to_plotly_json(), overwrite=True)
                return
            section.figure = go.FigureWidget(shown)
            section.output = None
            section.widget.children = (section.figure,)
            return
        section.figure = None
        if section.output is None:
            section.output = w.Output(layout=w.Layout(width="100%"))
            section.widget.children = (section.output,)
        with section.output:
            section.output.clear_output(wait=True)
            display(shown)

    def update(self, **changes) -> list[int]:
        """Set filters and re-draw the sections that use them; returns the indexes re-drawn."""
        if "lang" in changes:
            self.lang = check_lang(changes.pop("lang"))
            touched = list(range(len(self._sections)))
        else:
            touched = []
        self.filters.update(changes)
        for i, section in enumerate(self._sections):
            if i in touched or section.uses & set(changes):
                if i not in touched:
                    touched.append(i)
                self._draw(section)
        return sorted(touched)

    # -- the filter bar -----------------------------------------------------------------------------
    def options(self, name: str) -> list[tuple[str, str]]:
        """(label, value) choices for a filter; '' means all."""
        all_ = [(_label("all", self.lang), "")]
        if name == "grain":
            return [(g, g) for g in schema.ENUMS["grain"]]
        if name == "team":
            teams = self.crm.table("teams").select("team_id", "name").sort("team_id").collect()
            return all_ + [(f"{n} ({t})", t) for t, n in teams.iter_rows()]
        if name == "product":
            prods = self.crm.table("products").select("product_id", "name").sort("product_id").collect()
            return all_ + [(n, p) for p, n in prods.iter_rows()]
        enum = {"region": "region", "channel": "channel", "priority": "priority", "segment": "segment"}.get(name)
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
            controls.append(ctl)
        lang = w.ToggleButtons(options=[("English", "en"), ("中文", "zh")], value=self.lang,
                               description=_label("lang", self.lang))
        lang.observe(self._on_change("lang"), names="value")
        controls.append(lang)
        self._bar = w.HBox(controls, layout=w.Layout(flex_flow="row wrap"))
        self._bar.add_class("crmlib-filter-bar")
        return self._bar

    def _on_change(self, name: str):
        def handler(change):
            value = change["new"]
            if isinstance(value, dt.date):
                value = value.isoformat()
            self.update(**{name: value})

        return handler


def _same_shape(widget, figure) -> bool:
    return len(widget.data) == len(figure.data) and all(
        a.type == b.type for a, b in zip(widget.data, figure.data, strict=True)
    )


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

    parts = [f"{_label(k, lang)}: {escape(str(v))}" for k, v in filters.items() if v not in ("", None)]
    return Cards(f"<div class='crmlib-selection' style='color:#57606a'>{' · '.join(parts)}</div>")
