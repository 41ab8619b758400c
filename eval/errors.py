"""Errors raised while reading eval sets and converting benchmarks."""

from __future__ import annotations

from index.errors import CiteQAError


class EvalError(CiteQAError):
    """Base class for evaluation errors."""


class EvalDataError(EvalError):
    """An eval JSONL file is malformed; the message names the file and line."""


class ConversionError(EvalError):
    """A benchmark file cannot be converted (missing, malformed, or not parallel)."""
