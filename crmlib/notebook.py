"""What a notebook calls first: ``crm = crmlib.notebook.start(source, lang=lang, interactive=interactive)``.

It sets the plotly renderer: executed notebooks (``interactive=False``) export to self-contained HTML
(``plotly_mimetype+notebook``: plotly.js embedded once, renders offline; see STACK-NOTES); interactive
kernels (Voila, JupyterLab) show figures as :class:`crmlib.chart_widget.Chart` widgets. It makes crmlib's
chart template (``plotly_white``) plotly's default template in the kernel. It checks the
parameters and opens the data. A database password never belongs in a notebook parameter, because
papermill writes parameters into its outputs: pass ``source="db"`` and set ``CRMLIB_DB_URL``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import sources
from .errors import ConfigError
from .i18n import check_lang

RENDERER = "plotly_mimetype+notebook"
INTERACTIVE_RENDERER = "crmlib_chart"


@dataclass(frozen=True)
class Settings:
    lang: str = "en"
    interactive: bool = True


SETTINGS = Settings()


def start(source: str = "", lang: str = "en", interactive: bool = True) -> sources.Crm:
    """Configure rendering for this kernel and open the data source ('' means the default)."""
    global SETTINGS
    check_lang(lang)
    if source and sources.redact(source) != source:
        raise ConfigError(
            "The notebook parameter 'source' holds a database password, and papermill would write it into the "
            "report. Set CRMLIB_DB_URL in the environment and pass source='db' instead."
        )
    import plotly.io as pio

    if interactive:
        from .chart_widget import ChartRenderer

        pio.renderers["crmlib_chart"] = ChartRenderer()
    pio.renderers.default = os.environ.get("PLOTLY_RENDERER", INTERACTIVE_RENDERER if interactive else RENDERER)
    # crmlib's charts' template as plotly's default: a new figure gets it without plotly checking it
    # again (crmlib.charts.template; ~7 ms a figure)
    from .charts import TEMPLATE

    pio.templates.default = TEMPLATE
    SETTINGS = Settings(lang=lang, interactive=interactive)
    return sources.open(source or None)
