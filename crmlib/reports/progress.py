"""Progress of a report run on stderr: a live rich display on a terminal, plain lines otherwise (cron logs)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape


def _seconds(value) -> str:
    return f"{value:.1f} s" if isinstance(value, int | float) else ""


class RunProgress:
    """An ``on_event`` handler for :func:`crmlib.reports.run_reports`; use it as a context manager."""

    def __init__(self, console: Console, live: bool | None = None) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self.progress = None
        self.tasks: dict[str, int] = {}
        self.overall = None
        self.total = 0

    def __enter__(self) -> RunProgress:
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=30), MofNCompleteColumn(),
                TextColumn("{task.fields[phase]}"), TimeElapsedColumn(), console=self.console,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def __call__(self, e: dict) -> None:
        kind, name = e.get("event"), e.get("name", "")
        if kind == "notice":
            if self.progress is not None:
                self.progress.console.print(f"[yellow]note:[/] {escape(e['message'])}", highlight=False)
            else:
                self._line(f"note: {e['message']}")
        elif kind == "plan":
            self.total = len(e["reports"])
            names = ", ".join(r["name"] for r in e["reports"])
            head = (f"run {e['run_id']}: {self.total} report{'s' if self.total != 1 else ''} ({names}), "
                    f"{e['jobs']} at a time; data {e['source']}")
            if self.progress is None:
                self._line(head)
                return
            self.progress.console.print(escape(head), highlight=False)
            self.overall = self.progress.add_task("[bold]all reports", total=self.total, phase="")
            for r in e["reports"]:
                self.tasks[r["name"]] = self.progress.add_task(f"  {escape(r['name'])}", total=None, phase="waiting")
        elif kind == "spawn":
            if self.progress is not None:
                self.progress.update(self.tasks[name], phase="starting kernel")
        elif kind == "start":
            if self.progress is not None:
                self.progress.update(self.tasks[name], total=e["cells"], completed=0, phase="running")
            else:
                self._line(f"[{name}] started ({e['cells']} code cells)")
        elif kind == "cell":
            if self.progress is not None:
                self.progress.update(self.tasks[name], completed=e["done"], total=e["total"], phase="running")
        elif kind == "export":
            if self.progress is not None:
                self.progress.update(self.tasks[name], phase=f"writing {e['format']}")
        elif kind == "done":
            ok = e["status"] == "ok"
            where = e.get("html") or e.get("pdf") or e.get("notebook") or ""
            text = f"[{e['completed']}/{e['total']}] {name}: {e['status']} in {_seconds(e['duration'])}"
            if not ok and e.get("error"):
                text += f" - {e['error'].splitlines()[0][:300]}"
            elif where:
                text += f" ({where})"
            if self.progress is None:
                self._line(text)
                return
            task = self.tasks[name]
            total = self.progress.tasks[task].total or 1
            self.progress.update(task, completed=total, total=total,
                                 phase="[green]ok[/]" if ok else "[bold red]FAILED[/]")
            self.progress.advance(self.overall)
            if not ok:
                self.progress.console.print(f"[red]{escape(text)}[/]", highlight=False)
