"""Checks every area notebook's test shares: the sections are thin (one crmlib call each, no definitions,
loops or SQL) and each is a heading followed by its one code cell."""

from __future__ import annotations

import ast


def stored_parameters(nb, title: str, names) -> tuple[list, list]:
    """Check a notebook as committed: a ``# <title>`` heading first, no outputs or execution counts, a
    first code cell tagged ``parameters`` assigning exactly ``names`` in order. Returns (code cells, the
    parameter cell's statements) for the caller's own checks."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {title}")
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert code[0].metadata.get("tags") == ["parameters"]
    body = ast.parse(code[0].source).body
    assert [n.target.id for n in body] == list(names)
    return code, body


def assert_thin_sections(nb, code) -> None:
    """``nb`` the notebook, ``code`` its code cells (parameters first, then the start cell, then sections)."""
    assert "crmlib.notebook.start(source, lang=lang, interactive=interactive)" in code[1].source
    for cell in code[2:]:  # one call per section, no definitions, loops or SQL
        tree = ast.parse(cell.source)
        assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr), cell.source
        assert not any(isinstance(n, ast.FunctionDef | ast.ClassDef | ast.For | ast.While | ast.Lambda)
                       for n in ast.walk(tree)), cell.source
        assert "select " not in cell.source.lower()
    # every section is a heading followed by its one code cell
    kinds = [c.cell_type for c in nb.cells[3:]]
    assert kinds == ["markdown", "code"] * (len(kinds) // 2)
