"""The ``crmlib`` command.

Every user mistake ends as a :class:`~crmlib.errors.CrmlibError`, printed in a line or two without a
traceback (``--debug`` shows it) and a non-zero exit code.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from . import __version__, config
from .errors import CrmlibError

app = typer.Typer(
    help="CRM KPI Workbench: KPIs from CRM data, as notebooks, reports and dashboards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Create, import, validate, inspect and export CRM data.", no_args_is_help=True)
report_app = typer.Typer(help="Run notebooks into HTML/PDF reports (in parallel, on schedule) and list the runs.", no_args_is_help=True)
app.add_typer(data_app, name="data")
kpis_app = typer.Typer(help="The KPI catalog: list, show and evaluate KPIs.", no_args_is_help=True)
app.add_typer(report_app, name="report")
app.add_typer(kpis_app, name="kpis")
alerts_app = typer.Typer(help="Alerts: KPI thresholds, anomalies and opportunity signals; notifications.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")

# Piped output (cron logs, files) is not squeezed to 80 columns.
out = Console() if sys.stdout.isatty() else Console(width=200)
err = Console(stderr=True, soft_wrap=True)

SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        "-s",
        help="Data source: a .duckdb file, a folder of Parquet/CSV files, sqlite:///path, or 'db' for "
        "$CRMLIB_DB_URL. Default: $CRMLIB_SOURCE, else data/crm.duckdb.",
    ),
]


@app.command()
def version() -> None:
    """Print the crmlib version."""
    out.print(f"crmlib {__version__}")


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------
@data_app.command("demo")
def data_demo(
    scale: Annotated[float, typer.Option(help="Size: 1 is a company with ~2,000 accounts.", min=0.01)] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 42,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="DuckDB file to write. Default: data/crm.duckdb.")
    ] = None,
) -> None:
    """Generate the seeded demo warehouse (replaces the file atomically)."""
    from .sources.demo import write_demo

    target = out_path or config.default_warehouse()
    start = time.perf_counter()
    path = write_demo(target, scale=scale, seed=seed, progress=True)
    err.print(f"demo warehouse written: {path} (scale {scale:g}, seed {seed}) in {time.perf_counter() - start:.1f} s")


@data_app.command("import")
def data_import(
    paths: Annotated[list[Path], typer.Argument(help="CSV (any common encoding; .csv.gz too), .xlsx or .parquet files.")],
    table: Annotated[str, typer.Option("--table", "-t", help="Canonical table the files fill.")],
    mapping: Annotated[Path | None, typer.Option(help="YAML mapping file (columns, values, date formats).")] = None,
    preset: Annotated[str | None, typer.Option(help="Built-in mapping: salesforce, hubspot or online_retail.")] = None,
    into: Annotated[Path | None, typer.Option(help="Warehouse to write. Default: data/crm.duckdb.")] = None,
) -> None:
    """Import files into the warehouse: all-or-nothing, upserting by key."""
    from .importer import import_files

    report = import_files(paths, table=table, mapping=mapping, preset=preset, into=into)
    err.print(str(report), markup=False, highlight=False)


@data_app.command("validate")
def data_validate(source: SourceOpt = None) -> None:
    """Check a source against the canonical model; list every problem at once."""
    from . import open as open_source
    from .errors import ValidationError
    from .validate import validate_source

    with open_source(source) as crm:
        problems = validate_source(crm)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise ValidationError(problems, context=f"validate {crm.source}")
        for p in problems:
            err.print(p.render(), markup=False, highlight=False)
        err.print(f"{crm.source}: no errors ({len(problems)} warnings)", markup=False, highlight=False)


@data_app.command("info")
def data_info(source: SourceOpt = None) -> None:
    """Tables, row counts, date ranges and a fingerprint of the data."""
    from rich.table import Table

    from . import open as open_source

    with open_source(source) as crm:
        info = crm.info()
        t = Table(title=f"{crm.source} ({crm.kind})")
        for col in ("table", "rows", "time column", "first", "last"):
            t.add_column(col, justify="right" if col == "rows" else "left")
        for row in info.iter_rows():
            t.add_row(row[0], f"{row[1]:,}", row[2] or "", (row[3] or "")[:10], (row[4] or "")[:10])
        out.print(t)
        out.print(f"fingerprint: {crm.fingerprint()}")


@data_app.command("export")
def data_export(
    dest: Annotated[str, typer.Argument(help="A folder, a .duckdb file, sqlite:///path, or 'db' for $CRMLIB_DB_URL.")],
    source: SourceOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="File format for a folder: parquet or csv.")] = "parquet",
    replace: Annotated[bool, typer.Option("--replace", help="Replace existing tables or files.")] = False,
) -> None:
    """Copy every canonical table to another place (for PostgreSQL, Parquet, SQLite, DuckDB)."""
    from . import open as open_source
    from .sources import redact
    from .sources.export import export

    with open_source(source) as crm:
        counts = export(crm, dest, format=fmt, if_exists="replace" if replace else "fail")
    err.print(f"exported {sum(counts.values()):,} rows in {len(counts)} tables to {redact(dest)}")


# ------------------------------------------------------------------------------------------------
# kpis
# ------------------------------------------------------------------------------------------------
LangOpt = Annotated[str, typer.Option("--lang", help="Label language: en or zh.")]


@kpis_app.command("list")
def kpis_list(
    area: Annotated[str | None, typer.Option(help="Only this area (sales, marketing, service, customers).")] = None,
    lang: LangOpt = "en",
) -> None:
    """Every KPI of the catalog (package files plus $CRMLIB_KPI_PATH), with its label and formula."""
    from rich.table import Table

    from .i18n import check_lang
    from .kpis.catalog import default_catalog

    check_lang(lang)
    cat = default_catalog()
    if area is not None and area not in cat.areas:
        from .errors import ConfigError, suggest

        raise ConfigError(f"No KPI area {area!r}.{suggest(area, cat.areas)} Areas: {', '.join(cat.areas)}.")
    t = Table(title="KPI catalog" if lang == "en" else "指标目录")
    for col in ("area", "name", "label", "type", "unit", "formula"):
        t.add_column(col)
    for k in cat.list(area):
        t.add_row(cat.area_label(k.area, lang), k.name, k.label.get(lang), k.type, k.unit, cat.formula(k.name, lang))
    out.print(t)


@kpis_app.command("show")
def kpis_show(name: Annotated[str, typer.Argument(help="KPI name.")], lang: LangOpt = "en") -> None:
    """A KPI's definition: formula, source tables, time column, dimensions, measures."""
    from .i18n import check_lang
    from .kpis.catalog import default_catalog

    check_lang(lang)
    out.print(default_catalog().describe_text(name, lang), markup=False, highlight=False)


@kpis_app.command("eval")
def kpis_eval(
    names: Annotated[list[str], typer.Argument(help="KPI names (see crmlib kpis list).")],
    by: Annotated[list[str] | None, typer.Option("--by", help="Dimension to group by; repeat for several.")] = None,
    grain: Annotated[str, typer.Option(help="day, week, month, quarter or year.")] = "month",
    period: Annotated[
        str | None, typer.Option(help="START:END (e.g. 2025-01-01:2025-12-31, 2025-01:2025-06), or 2025, 2025-Q1.")
    ] = None,
    compare: Annotated[str | None, typer.Option(help="previous_period or previous_year.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    source: SourceOpt = None,
) -> None:
    """Evaluate KPIs by dimension and period, with targets and attainment."""
    from . import open as open_source
    from .errors import ConfigError

    if fmt not in ("table", "csv", "json"):
        raise ConfigError(f"--format {fmt!r} is not supported. Use table, csv or json.")
    with open_source(source) as crm:
        frame = crm.kpis(names, by=by or (), grain=grain, period=period, compare=compare)
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
    elif fmt == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        import polars as pl

        with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
            out.print(str(frame), markup=False, highlight=False)


# ------------------------------------------------------------------------------------------------
# alerts
# ------------------------------------------------------------------------------------------------
@alerts_app.command("check")
def alerts_check(
    source: SourceOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    rules: Annotated[Path | None, typer.Option(help="Rules file. Default: parameters/alerts.yaml.")] = None,
    outputs: Annotated[Path | None, typer.Option(help="Folder of alerts.json. Default: outputs/.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Check as of this day (YYYY-MM-DD). Default: the data's last day.")] = None,
) -> None:
    """Evaluate rules, anomalies and signals; update outputs/alerts.json; notify. Exit 2 when something is critical."""
    import json

    from . import alerts
    from . import open as open_source

    if fmt not in ("table", "json"):
        from .errors import ConfigError

        raise ConfigError(f"--format {fmt!r} is not supported. Use table or json.")
    with open_source(source) as crm:
        result = alerts.check(crm, rules=rules, as_of=as_of, outputs=outputs)
    new = {a["key"] for a in result.raised + result.escalated}
    if fmt == "json":
        keep = ("key", "kind", "name", "severity", "kpi", "scope", "period", "value", "threshold", "expected", "score",
                "since", "owner", "message_en", "message_zh", "evidence")
        doc = {"as_of": result.as_of.isoformat(), "state": str(result.path), "critical": result.critical,
               "alerts": [{**{k: a.get(k) for k in keep}, "new": a["key"] in new} for a in result.alerts],
               "resolved": [a["key"] for a in result.resolved],
               "deliveries": {"delivered": len(result.delivered), "failed": len(result.failed)}}
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=1, default=str) + "\n")
    else:
        from rich.table import Table

        t = Table(title=f"alerts as of {result.as_of} ({len(result.alerts)}; {len(new)} new, "
                        f"{len(result.resolved)} resolved)")
        for col in ("severity", "new", "kind", "scope", "period", "message"):
            t.add_column(col, overflow="fold")
        colour = {"critical": "red", "warning": "yellow", "info": "cyan"}
        for a in result.alerts:
            t.add_row(f"[{colour[a['severity']]}]{a['severity']}[/]", "new" if a["key"] in new else "",
                      escape(a["kind"]), escape(a["scope"]), escape(a["period"]), escape(a["message_en"]))
        out.print(t)
        for a in result.resolved:
            out.print(f"resolved: {a['key']}", markup=False, highlight=False)
        err.print(f"state: {result.path}", markup=False, highlight=False)
    for item in result.failed:
        err.print(f"warning: {item['channel']} delivery failed after {item['attempts']} attempt(s): "
                  f"{item['last_error']}; kept in the outbox, retried at the next check", markup=False, highlight=False)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------
@report_app.command("run")
def report_run(
    names: Annotated[list[str] | None, typer.Argument(help="Run definitions in parameters/ (default: all).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every definition in parameters/.")] = False,
    due: Annotated[
        bool, typer.Option("--due", help="Only definitions whose schedule fired since their last successful run.")
    ] = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Reports run at the same time. Default: number of cores.")
    ] = None,
    source: SourceOpt = None,
) -> None:
    """Execute notebooks with papermill into outputs/<run-id>/ (ipynb, HTML, PDF), in parallel processes.

    Exit code: 0 all reports ok (or nothing due), 1 a report failed, 75 another run holds outputs/.lock,
    130/143 interrupted (nothing of the run is kept).
    """
    from .reports.worker import skip_slow_optional_imports

    skip_slow_optional_imports()
    from .reports import run_reports
    from .reports.progress import RunProgress

    with RunProgress(err) as progress:
        result = run_reports(names or None, source=source, run_all=all_, due=due, jobs=jobs, on_event=progress)
    if result.run_id is None:
        err.print(f"nothing due; index: {result.index}", markup=False, highlight=False)
        return
    for item in result.reports:
        where = result.folder / (item.html or item.pdf or item.notebook or "")
        err.print(f"{item.status:>7}  {item.name}  {item.duration:.1f} s  {where}", markup=False, highlight=False)
    err.print(f"run {result.run_id}: {result.status} in {result.duration:.1f} s; open {result.index}",
              markup=False, highlight=False)
    if result.status != "ok":
        raise typer.Exit(1)


@report_app.command("list")
def report_list(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show the newest N runs.")] = 20,
) -> None:
    """Every report run in outputs/, newest first: status, duration and each report's files (as index.html)."""
    from rich.table import Table

    from .reports import list_runs

    outputs = config.outputs_dir()
    runs = list_runs(outputs)
    if not runs:
        err.print(f"no report runs in {outputs} yet; run `crmlib report run`.", markup=False, highlight=False)
        return
    t = Table(title=f"report runs in {outputs} ({len(runs)}, newest first)")
    for col in ("run", "status", "started", "duration", "reports"):
        t.add_column(col, overflow="fold")
    for run in runs[:limit]:
        lines = []
        for r in run.get("reports", []):
            files = ", ".join(f"{run['folder']}/{f}" for f in r.get("files", []))
            line = f"{r['name']}: {r['status']} {r.get('duration', 0):.1f} s  {files}"
            if r.get("error"):
                line += f"\n  {r['error'].splitlines()[0][:200]}"
            lines.append(line)
        colour = "green" if run.get("status") == "ok" else "red"
        t.add_row(escape(run["folder"]), f"[{colour}]{escape(str(run.get('status')))}[/]",
                  escape(str(run.get("started", ""))[:19].replace("T", " ")),
                  f"{run.get('duration', 0):.1f} s" if isinstance(run.get("duration"), int | float) else "",
                  escape("\n".join(lines)))
    out.print(t)
    out.print(f"index: {outputs / 'index.html'}", markup=False, highlight=False)


# ------------------------------------------------------------------------------------------------
# serve
# ------------------------------------------------------------------------------------------------
@app.command("serve")
def serve_cmd(
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8866,
    host: Annotated[
        str, typer.Option(help="Address to listen on. Anything but loopback requires a token.")
    ] = "127.0.0.1",
    pool: Annotated[
        int, typer.Option("--pool", min=0, help="Preheated kernels per dashboard (0: start one per visit).")
    ] = 1,
    source: SourceOpt = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="Access token every viewer needs (?token=...). Prefer the environment variable: "
            "a command line is visible to other users of the machine.",
            envvar="CRMLIB_SERVE_TOKEN",
            show_envvar=True,
        ),
    ] = None,
    notebooks: Annotated[
        Path | None, typer.Option(help="Folder of notebooks to serve. Default: notebooks/ of the project.")
    ] = None,
) -> None:
    """Serve the area notebooks as Voila dashboards: landing page, preheated kernels, tracebacks off."""
    from .serve import serve

    serve(
        host=host,
        port=port,
        pool=pool,
        token=token,
        source=source,
        notebooks=notebooks,
        echo=lambda text: err.print(text, markup=False, highlight=False),
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: turns CrmlibError into a short message and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        # standalone_mode=False: click returns a command's typer.Exit code instead of exiting
        code = app(args=args, prog_name="crmlib", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except CrmlibError as exc:
        if debug:
            raise
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: typer prints help or the usage problem
        exc.show()
        sys.exit(getattr(exc, "exit_code", 2))
    except (KeyboardInterrupt, typer.Abort):
        err.print("interrupted; nothing was half-written.")
        sys.exit(130)
    except Exception as exc:  # a bug, not a user mistake: still no raw traceback by default
        if debug:
            raise
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}\n"
            "This is a bug in crmlib. Re-run with --debug for the traceback and report it.",
            highlight=False,
        )
        sys.exit(70)


if __name__ == "__main__":  # pragma: no cover
    main()
