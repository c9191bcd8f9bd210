"""KPIs declared once: the spec (:mod:`.spec`), the YAML catalog (:mod:`.catalog`), the engine
(:func:`evaluate`, :mod:`.engine`) and targets (:mod:`.targets`).

>>> from crmlib.kpis import default_catalog
>>> default_catalog().get("revenue").unit
'currency'

The guide to the YAML format, with a worked example, is ``docs/kpis.md``.
"""

from .catalog import Catalog, default_catalog, load_catalog, problems_of
from .engine import evaluate, kpi_kind
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
from .targets import cascade_check, contribution, read_targets_file

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
    "cascade_check",
    "contribution",
    "default_catalog",
    "evaluate",
    "kpi_kind",
    "load_catalog",
    "problems_of",
    "read_targets_file",
]
