"""CRM KPI Workbench library: ``crm = crmlib.open()`` and the area modules.

Submodules (``crmlib.overview``, ``crmlib.charts``, ...) are imported on first attribute access, so
``import crmlib`` stays fast.
"""

from importlib import import_module

from .errors import CrmlibError
from .sources import Crm, open

__version__ = "0.1.0"
__all__ = ["Crm", "CrmlibError", "__version__", "open"]

_SUBMODULES = {
    "cards", "charts", "cli", "config", "errors", "i18n", "importer", "kpis", "marketing", "charts_marketing", "customers", "charts_customers", "models", "dashboard", "sales", "performance", "charts_sales", "tables_sales", "service", "charts_service", "tables_service", "calendars", "notebook", "overview", "reports", "schema",
    "sources", "tables", "validate", "alerts", "notify", "executive", "roi", "charts_executive", "charts_roi",
    "tables_executive", "charts_alerts", "tables_alerts", "serve", "money",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'crmlib' has no attribute {name!r}")
