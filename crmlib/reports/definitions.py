"""Run definitions: the ``parameters/*.yaml`` files that name a notebook, validated at load.

Every problem of every file is reported at once, each line naming its file. A YAML file without a
``notebook`` key is not a run definition (alert rules and calendars live in ``parameters/`` too) and is
skipped, unless one of its keys is a near miss of ``notebook``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import config
from ..errors import ConfigError, suggest
from ..sources import redact

FORMATS = ("ipynb", "html", "pdf")
DEFAULT_FORMATS = ("ipynb", "html")
KEYS = ("name", "notebook", "parameters", "formats", "schedule", "lang")
# Set by the runner, never by a definition: reports are static (no widgets).
RUNNER_PARAMETERS = ("interactive",)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_SECRET_KEY = re.compile(r"pass(word|wd)?$|secret|token|api_?key|credential|private_key", re.IGNORECASE)
_SIMPLE_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


@dataclass(frozen=True)
class RunDefinition:
    """One report: a notebook, its parameters, the formats to write and an optional cron schedule."""

    name: str
    notebook: Path
    parameters: dict = field(hash=False)
    formats: tuple[str, ...]
    file: Path
    schedule: str | None = None
    lang: str | None = None
    declared: tuple[str, ...] = ()  # the notebook's parameters (its cell tagged ``parameters``)

    @functools.cached_property
    def title(self) -> str:
        return notebook_title(self.notebook) or self.name

    def execution_parameters(self) -> dict:
        """What papermill injects: the definition's parameters, and ``interactive=False`` when declared."""
        params = dict(self.parameters)
        if "interactive" in self.declared:
            params["interactive"] = False
        return params


def notebook_title(path: Path) -> str | None:
    """The first markdown heading of a notebook (the report title)."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip() or None
    return None


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(config.home()))
    except ValueError:
        return str(path)


def check_schedule(schedule: object) -> str | None:
    """None when ``schedule`` is a valid cron expression, else what is wrong with it."""
    from croniter import CroniterBadDateError, croniter

    if not isinstance(schedule, str) or not schedule.strip():
        return (f"schedule {schedule!r} is not a cron expression: write it as a quoted string of five fields, "
                "minute hour day-of-month month day-of-week, e.g. \"0 6 * * 1-5\"")
    fields = schedule.split()
    if not schedule.startswith("@") and len(fields) != 5:
        return (f"schedule {schedule!r} has {len(fields)} fields; a cron expression has five, minute hour "
                "day-of-month month day-of-week, e.g. \"0 6 * * 1-5\" (06:00 on weekdays)")
    try:
        croniter(schedule).get_next(dt.datetime)
    except CroniterBadDateError:
        return f"schedule {schedule!r} never fires (no such date); check the day-of-month and month fields"
    except (ValueError, KeyError) as exc:
        return (f"schedule {schedule!r} is not a valid cron expression ({exc}); five fields, minute hour "
                "day-of-month month day-of-week, e.g. \"0 6 * * 1-5\" (06:00 on weekdays) or \"*/30 * * * *\"")
    return None


def next_run(schedule: str, after: dt.datetime) -> dt.datetime:
    """The first time ``schedule`` fires strictly after ``after``."""
    from croniter import croniter

    return croniter(schedule, after).get_next(dt.datetime)


def is_due(definition: RunDefinition, last_success: dt.datetime | None, now: dt.datetime) -> bool:
    """A scheduled definition is due when its schedule fired since its last successful run (or it never ran)."""
    if not definition.schedule:
        return False
    if last_success is None:
        return True
    return next_run(definition.schedule, last_success) <= now


def _notebook_parameters(path: Path) -> dict[str, dict]:
    import papermill as pm

    return pm.inspect_notebook(str(path))


def _check_parameters(file: str, params: dict, declared: dict[str, dict], nb_shown: str) -> list[str]:
    problems = []
    for key, value in params.items():
        key = str(key)
        if key in RUNNER_PARAMETERS:
            problems.append(f"{file}: parameter {key!r} is set by the report runner (False); remove it")
            continue
        if key not in declared:
            if not declared:
                problems.append(
                    f"{file}: parameter {key!r}: notebook {nb_shown} has no cell tagged 'parameters' "
                    "(tag one cell 'parameters' with `name: type = value  # help` lines)"
                )
            else:
                problems.append(
                    f"{file}: parameter {key!r} is not declared by notebook {nb_shown}."
                    f"{suggest(key, declared)} Declared: {', '.join(sorted(declared))}"
                )
            continue
        if _SECRET_KEY.search(key) or redact(str(value)) != str(value):
            problems.append(
                f"{file}: parameter {key!r} holds a secret (a password or token); papermill writes parameters into "
                "the report. Give it through the environment instead (a database: CRMLIB_DB_URL and source: db)"
            )
            continue
        expected = _SIMPLE_TYPES.get(str(declared[key].get("inferred_type_name")))
        if expected and value is not None and (
            not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected)
        ):
            problems.append(
                f"{file}: parameter {key!r} is {type(value).__name__} {value!r} but notebook {nb_shown} declares it "
                f"{declared[key]['inferred_type_name']}"
            )
    return problems


def load_definitions(folder: Path | None = None) -> dict[str, RunDefinition]:
    """Every run definition in ``folder`` (default ``<home>/parameters``), by name; all problems at once."""
    folder = Path(folder) if folder else config.home() / "parameters"
    defs: dict[str, RunDefinition] = {}
    problems: list[str] = []
    inspected: dict[Path, dict] = {}
    for f in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        shown = _shown(f)
        try:
            raw = yaml.safe_load(f.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
            problems.append(
                f"{shown}: not valid YAML{line}: {getattr(exc, 'problem', None) or exc}. "
                "Quote cron expressions: schedule: \"0 6 * * *\""
            )
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{shown}: cannot read it: {exc}")
            continue
        if not isinstance(raw, dict):
            continue
        if "notebook" not in raw:
            near = suggest("notebook", [str(k) for k in raw])
            if near:
                problems.append(
                    f"{shown}: no 'notebook' key, so it is not a run definition; but it has "
                    f"{near[len(' Did you mean '):-1]}: did you mean \"notebook\"?"
                )
            continue
        before = len(problems)
        unknown = [str(k) for k in raw if k not in KEYS]
        for key in unknown:
            problems.append(f"{shown}: unknown key {key!r}.{suggest(key, KEYS)} Allowed keys: {', '.join(KEYS)}")

        name = raw.get("name", f.stem)
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(
                f"{shown}: name {name!r} must be letters, digits, '_', '-' or '.' (it becomes a file name)"
            )
            name = f.stem

        nb_value = raw.get("notebook")
        nb = None
        if not isinstance(nb_value, str) or not nb_value.strip():
            problems.append(f"{shown}: notebook must be a path such as notebooks/overview.ipynb, not {nb_value!r}")
        else:
            nb = (config.home() / nb_value).resolve()
            if nb.suffix != ".ipynb":
                problems.append(f"{shown}: notebook {nb_value} is not a .ipynb file")
                nb = None
            elif not nb.is_file():
                known = sorted(p.relative_to(config.home()).as_posix()
                               for p in (config.home() / "notebooks").glob("*.ipynb"))
                problems.append(
                    f"{shown}: notebook {nb_value} does not exist (relative to {config.home()})."
                    f"{suggest(nb_value, known)} Notebooks: {', '.join(known) or 'none'}"
                )
                nb = None

        params = raw.get("parameters") or {}
        if not isinstance(params, dict):
            problems.append(f"{shown}: parameters must be a mapping of name: value, not {type(params).__name__}")
            params = {}
        lang = raw.get("lang")
        if lang is not None:
            if lang not in config.LANGS:
                problems.append(f"{shown}: lang {lang!r} is not supported; use one of: {', '.join(config.LANGS)}")
            elif "lang" in params and params["lang"] != lang:
                problems.append(f"{shown}: lang {lang!r} contradicts parameters.lang {params['lang']!r}; keep one")
            else:
                params = {**params, "lang": lang}

        declared: dict[str, dict] = {}
        if nb is not None:
            if nb not in inspected:
                try:
                    inspected[nb] = _notebook_parameters(nb)
                except Exception as exc:  # noqa: BLE001 - a broken notebook file is a user problem
                    problems.append(f"{shown}: cannot read notebook {nb_value}: {exc}")
                    inspected[nb] = {}
            declared = inspected[nb]
            problems += _check_parameters(shown, params, declared, str(nb_value))
            if lang is not None and "lang" not in declared:
                problems.append(f"{shown}: lang is set but notebook {nb_value} declares no 'lang' parameter")

        formats = raw.get("formats", list(DEFAULT_FORMATS))
        if isinstance(formats, str):
            formats = [formats]
        if not isinstance(formats, list) or not formats:
            problems.append(f"{shown}: formats must be a non-empty list drawn from {', '.join(FORMATS)}")
            formats = list(DEFAULT_FORMATS)
        for x in formats:
            if x not in FORMATS:
                problems.append(
                    f"{shown}: format {x!r} is not supported.{suggest(str(x), FORMATS)} Supported: {', '.join(FORMATS)}"
                )

        schedule = raw.get("schedule")
        if schedule is not None:
            bad = check_schedule(schedule)
            if bad:
                problems.append(f"{shown}: {bad}")

        if name in defs:
            problems.append(f"{shown}: name {name!r} is already used by {_shown(defs[name].file)}; names are unique")
        if len(problems) > before or nb is None:
            continue
        defs[name] = RunDefinition(
            name=name, notebook=nb, parameters=dict(params), formats=tuple(dict.fromkeys(formats)), file=f,
            schedule=schedule, lang=lang, declared=tuple(declared),
        )
    if problems:
        raise ConfigError(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in the run definitions "
            f"({_shown(folder)}/*.yaml):\n  - " + "\n  - ".join(problems)
        )
    return defs
