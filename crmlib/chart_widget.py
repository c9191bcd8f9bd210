"""A light plotly chart widget for the dashboards: one copy of plotly.js per page, not one per chart.

plotly's own ``go.FigureWidget`` (plotly 6+) is an anywidget whose front-end module *is* the 5 MB
plotly.js bundle; every chart on a page syncs and evaluates its own copy. A dashboard with nine charts
moved ~45 MB through the kernel's websocket and had charts miss anywidget's 2-second start-up limit
("[anywidget] Failed to initialize model"), after which they ignored updates (docs/NOTES.md, session 2).

:class:`Chart` keeps the figure as one JSON string trait (``spec``) and ships a front-end module of a
few lines. plotly.js comes once per page: ``crmlib serve``'s page loads it from the server before the
widgets start (the installed plotly package's ``plotly.min.js``, cached by the browser); elsewhere
(JupyterLab) the first chart asks its kernel, which sends the same file as one binary buffer. Nothing is
fetched from the internet. Every other chart of the page waits for that same copy. A new ``spec`` is drawn
with ``Plotly.react`` in place, so an update is one message and one redraw (no flicker). A click on a point calls the ``on_click`` callbacks with
``{"x", "y", "index", "trace", "customdata"}``, the point shape the dashboard's drill-downs take.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets
from plotly.io.base_renderers import MimetypeRenderer

log = logging.getLogger("crmlib.dashboard")

_ESM = r"""
const KEY = "__crmlibPlotly";

function fromPage() {
  // crmlib serve's page loads plotly.js itself, once (crmlib/voila/render/index.html.j2)
  const tag = document.getElementById("crmlib-plotly-js");
  if (!tag) return Promise.reject(new Error("no plotly.js on this page"));
  return new Promise((resolve, reject) => {
    const check = () => {
      if (tag.dataset.state === "loaded" && globalThis.Plotly) return resolve(globalThis.Plotly);
      if (tag.dataset.state) return reject(new Error("plotly.js failed to load"));
      setTimeout(check, 20);
    };
    check();
  });
}

function fromKernel(model) {
  // elsewhere (JupyterLab): the kernel sends the plotly package's bundle once per page
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      model.off("msg:custom", onMsg);
      reject(new Error("plotly.js did not arrive from the kernel"));
    }, 60000);
    function onMsg(msg, buffers) {
      if (!msg || msg.type !== "plotly.js") return;
      clearTimeout(timer);
      model.off("msg:custom", onMsg);
      try {
        const script = document.createElement("script");
        script.textContent = new TextDecoder().decode(buffers[0]);
        document.head.appendChild(script);
        resolve(globalThis.Plotly);
      } catch (err) {
        reject(err);
      }
    }
    model.on("msg:custom", onMsg);
    model.send({ type: "need-plotly.js" });
  });
}

function plotly(model) {
  if (globalThis.Plotly && globalThis.Plotly.react) return Promise.resolve(globalThis.Plotly);
  if (!globalThis[KEY]) {
    globalThis[KEY] = fromPage().catch(() => fromKernel(model)).catch((err) => {
      delete globalThis[KEY];  // the next chart asks again
      throw err;
    });
  }
  return globalThis[KEY];
}

function render({ model, el }) {
  el.classList.add("crmlib-chart");
  const div = document.createElement("div");
  div.style.width = "100%";
  el.appendChild(div);
  let Plotly = null;
  let listening = false;
  let latest = 0;

  async function draw() {
    const mine = ++latest;
    try {
      Plotly = await plotly(model);
    } catch (err) {
      div.textContent = "The chart could not be drawn.";
      console.error(err);
      return;
    }
    if (mine !== latest) return;  // a newer figure arrived while plotly.js was loading
    const fig = JSON.parse(model.get("spec") || "{}");
    const layout = Object.assign({ autosize: true }, fig.layout || {});
    const config = Object.assign({ responsive: true, displaylogo: false }, fig.config || {});
    await Plotly.react(div, fig.data || [], layout, config);
    if (!listening) {
      listening = true;
      div.on("plotly_click", (event) => {
        const p = event && event.points && event.points[0];
        if (!p) return;
        const index = p.pointIndex !== undefined ? p.pointIndex : p.pointNumber;
        model.send({
          type: "click",
          point: {
            x: p.x === undefined ? null : p.x,
            y: p.y === undefined ? null : p.y,
            label: p.label === undefined ? null : p.label,
            index: index === undefined ? null : index,
            curve: p.curveNumber === undefined ? null : p.curveNumber,
            customdata: p.customdata === undefined ? null : p.customdata,
          },
        });
      });
    }
  }

  model.on("change:spec", draw);
  draw();
  return () => {
    model.off("change:spec", draw);
    if (Plotly) Plotly.purge(div);
  };
}

export default { render };
"""


@functools.cache
def plotly_js() -> bytes:
    """The plotly.js bundle of the installed plotly package (read once per process)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode("utf-8")


class Chart(anywidget.AnyWidget):
    """A plotly figure as a widget: ``Chart(fig)``; ``chart.figure = new_fig`` redraws it in place."""

    _esm = _ESM
    spec = traitlets.Unicode("{}").tag(sync=True)

    def __init__(self, figure=None, **kwargs):
        super().__init__(**kwargs)
        self._figure = None
        self._click: list[Callable[[dict], Any]] = []
        self.on_msg(self._on_msg)
        if figure is not None:
            self.figure = figure

    @property
    def figure(self):
        """The ``go.Figure`` shown."""
        return self._figure

    @figure.setter
    def figure(self, figure) -> None:
        self.show(figure)

    def show(self, figure, spec: str | None = None) -> None:
        """Draw ``figure``; ``spec``: its ``to_json()`` when already made (e.g. by a worker thread)."""
        self._figure = figure
        self.spec = figure.to_json() if spec is None else spec

    def on_click(self, callback: Callable[[dict], Any]) -> None:
        """Call ``callback(point)`` when a point is clicked in the browser."""
        self._click.append(callback)

    def click(self, point: dict) -> None:
        """What a click in the browser does: ``point`` as the front end sends it (curve, index, x, y, ...)."""
        curve = point.get("curve")
        trace = None
        if self._figure is not None and isinstance(curve, int) and 0 <= curve < len(self._figure.data):
            trace = self._figure.data[curve].name
        shown = {"x": point.get("x"), "y": point.get("y"), "index": point.get("index"), "trace": trace,
                 "customdata": point.get("customdata")}
        if shown["x"] is None and point.get("label") is not None:  # pie and funnelarea points have labels
            shown["x"] = point["label"]
        for callback in self._click:
            callback(shown)

    def _on_msg(self, _widget, content, _buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "need-plotly.js":
            self.send({"type": "plotly.js"}, buffers=[plotly_js()])
        elif kind == "click" and isinstance(content.get("point"), dict):
            self.click(content["point"])
        else:
            log.debug("chart widget: ignored message %s", json.dumps(content)[:200])


class ChartRenderer(MimetypeRenderer):
    """A plotly renderer that shows a figure as a :class:`Chart` widget (``crmlib.notebook.start`` uses it
    for interactive kernels, so a notebook's plain ``go.Figure`` outputs draw like the dashboards' charts
    under Voila: one plotly.js per page, no second copy through plotly's own front-end extension)."""

    def to_mimebundle(self, fig_dict):
        import plotly.graph_objects as go

        bundle = Chart(go.Figure(fig_dict))._repr_mimebundle_()
        return bundle[0] if isinstance(bundle, tuple) else bundle  # anywidget gives (data, metadata)
