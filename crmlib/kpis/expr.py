"""Derived-KPI expressions: KPI names, numbers, ``+ - * /`` and parentheses, nothing else.

Parsed with :mod:`ast` and checked node by node, so a catalog file can never run code. The engine
evaluates a checked expression with :func:`evaluate` over numbers or dataframe expressions.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_ALLOWED = "KPI names, numbers, + - * / and parentheses"


class ExprError(ValueError):
    """An expression is not a valid derived-KPI expression (message says why)."""


@lru_cache(maxsize=512)
def parse_expr(expr: str) -> ast.expr:
    """Parse and check a derived expression; raise :class:`ExprError` saying what is not allowed."""
    if not isinstance(expr, str) or not expr.strip():
        raise ExprError("the expression is empty")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        col = f" at character {exc.offset}" if exc.offset else ""
        raise ExprError(f"is not a valid expression ({exc.msg}{col}); write {_ALLOWED}") from None
    text = expr.strip()
    for node in ast.walk(tree.body):
        if isinstance(node, ast.operator | ast.unaryop | ast.expr_context):
            continue  # checked with their BinOp / UnaryOp
        piece = ast.get_source_segment(text, node) or type(node).__name__
        if isinstance(node, ast.BinOp):
            if type(node.op) in _BINOPS:
                continue
            raise ExprError(f"uses an operator that is not allowed ({piece}); write {_ALLOWED}")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub | ast.UAdd):
                continue
            raise ExprError(f"uses an operator that is not allowed ({piece}); write {_ALLOWED}")
        if isinstance(node, ast.Name | ast.Constant) and (
            isinstance(node, ast.Name) or type(node.value) in (int, float)
        ):
            continue
        kind = {
            ast.Call: "a function call",
            ast.Attribute: "an attribute",
            ast.Subscript: "a subscript",
            ast.Compare: "a comparison",
            ast.BoolOp: "a boolean operator",
            ast.Constant: "a non-numeric constant",
        }.get(type(node), f"a {type(node).__name__} expression")
        raise ExprError(f"contains {kind} ({piece}); write {_ALLOWED}")
    return tree.body


def expr_names(expr: str) -> tuple[str, ...]:
    """KPI names an expression refers to, in order of first appearance."""
    tree = parse_expr(expr)
    nodes = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Name)), key=lambda n: n.col_offset)
    return tuple(dict.fromkeys(n.id for n in nodes))


def _eval(node: ast.expr, values: Mapping[str, Any], divide) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, values, divide)
        return -operand if isinstance(node.op, ast.USub) else operand
    assert isinstance(node, ast.BinOp)
    left, right = _eval(node.left, values, divide), _eval(node.right, values, divide)
    if isinstance(node.op, ast.Add):
        return left + right
    if isinstance(node.op, ast.Sub):
        return left - right
    if isinstance(node.op, ast.Mult):
        return left * right
    return divide(left, right) if divide else left / right


def evaluate(expr: str, values: Mapping[str, Any], divide: Callable[[Any, Any], Any] | None = None) -> Any:
    """Evaluate a checked expression with ``values[name]`` for each KPI name (see ``DerivedKpi.evaluate``)."""
    return _eval(parse_expr(expr), values, divide)
