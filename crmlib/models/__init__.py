"""Statistical models on small aggregated inputs (per-customer summaries, path counts, KPI series).

* :mod:`crmlib.models.clv`: BG/NBD (:class:`BetaGeoModel`), Gamma-Gamma (:class:`GammaGammaModel`) and
  :func:`customer_lifetime_value`.

Names are imported on first access, so ``import crmlib.models`` stays cheap.
"""

from importlib import import_module

__all__ = ["BetaGeoModel", "GammaGammaModel", "customer_lifetime_value"]

_WHERE = {
    "BetaGeoModel": "bgnbd",
    "GammaGammaModel": "gamma_gamma",
    "customer_lifetime_value": "clv",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'crmlib.models' has no attribute {name!r}")
