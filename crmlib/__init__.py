"""CRM KPI Workbench library: ``crm = crmlib.open()`` and the area modules."""

from .errors import CrmlibError
from .sources import Crm, open

__version__ = "0.1.0"
__all__ = ["Crm", "CrmlibError", "__version__", "open"]
