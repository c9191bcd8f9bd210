"""Every error a user can cause is a :class:`CrmlibError`.

The CLI prints ``str(error)`` in a line or two and exits non-zero; no traceback unless ``--debug``.
A message names what is wrong (file, table, column, rows, sample values) and says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class CrmlibError(Exception):
    """Base class: a problem the user can fix. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class ConfigError(CrmlibError):
    """A setting, parameter or environment variable is wrong."""


class SourceError(CrmlibError):
    """A data source cannot be opened or read (missing file, bad URL, unreachable database)."""


class ImportDataError(CrmlibError):
    """A file given to ``crmlib data import`` cannot be read or mapped."""


class MappingError(CrmlibError):
    """A mapping file or preset is malformed."""


class CurrencyError(CrmlibError):
    """Amounts in several currencies would be added without an exchange rate."""


@dataclass(frozen=True)
class Problem:
    """One problem found by validation.

    ``rows`` are 1-based data row numbers as a user sees them in the file (header not counted)
    or in the table; ``sample`` holds a few of the offending values.
    """

    check: str
    table: str
    message: str
    hint: str
    column: str | None = None
    rows: tuple[int, ...] = ()
    n_rows: int = 0
    sample: tuple[str, ...] = ()
    file: str | None = None
    severity: str = "error"  # "error" blocks an import; "warning" is reported only

    def render(self) -> str:
        where = [f"file {self.file}"] if self.file else []
        where.append(f"table {self.table}")
        if self.column:
            where.append(f"column {self.column}")
        text = f"[{self.check}] {', '.join(where)}: {self.message}"
        if self.n_rows:
            shown = ", ".join(str(r) for r in self.rows)
            more = f" (first {len(self.rows)} of {self.n_rows})" if self.n_rows > len(self.rows) else ""
            text += f"; rows {shown}{more}"
        if self.sample:
            text += "; sample values: " + ", ".join(repr(s) for s in self.sample)
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{prefix}{text}. {self.hint}"


@dataclass
class ValidationError(CrmlibError):
    """Validation found problems; all of them are listed at once."""

    problems: list[Problem] = field(default_factory=list)
    context: str = "validation"

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        n_err = sum(p.severity == "error" for p in self.problems)
        n_warn = len(self.problems) - n_err
        head = f"{self.context}: {n_err} error{'s' if n_err != 1 else ''}"
        if n_warn:
            head += f", {n_warn} warning{'s' if n_warn != 1 else ''}"
        return head + "\n" + "\n".join("  - " + p.render() for p in self.problems)


def suggest(word: str, choices, n: int = 1) -> str:
    """Return ' Did you mean "x"?' for the closest choice, or '' when nothing is close."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(f'"{c}"' for c in close) + "?"
