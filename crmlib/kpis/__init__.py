"""KPIs declared once: the spec (:mod:`.spec`), the YAML catalog (:mod:`.catalog`), later the engine.

>>> from crmlib.kpis import default_catalog
>>> default_catalog().get("revenue").unit
'currency'

The guide to the YAML format, with a worked example, is ``docs/kpis.md``.
"""

from .catalog import Catalog, default_catalog, load_catalog, problems_of
from .spec import (
    CatalogError,
    CatalogProblem,
    ConversionKpi,
    CumulativeKpi,
    DerivedKpi,
    Dimension,
    DimensionPath,
    ExternalKpi,
    Filter,
    Kpi,
    Measure,
    RatioKpi,
    SimpleKpi,
    Text,
)

__all__ = [
    "Catalog",
    "CatalogError",
    "CatalogProblem",
    "ConversionKpi",
    "CumulativeKpi",
    "DerivedKpi",
    "Dimension",
    "DimensionPath",
    "ExternalKpi",
    "Filter",
    "Kpi",
    "Measure",
    "RatioKpi",
    "SimpleKpi",
    "Text",
    "default_catalog",
    "load_catalog",
    "problems_of",
]
