"""Progress of long steps (an index update), for people: a bar on a terminal, log lines everywhere else.

``index.ingest`` reports ``Progress`` events (stage, done, total, rate, ETA); this turns them into output
that is never silent: on a terminal a tqdm bar per stage, otherwise (a pipe, a log file, a server) a log line
per stage start and end and at most every ``interval`` seconds in between, with the rate and the ETA.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from index.ingest import Progress, UpdateReport, format_duration

log = logging.getLogger("citeqa.ingest")

STAGE_WORDS = {
    "scan": ("scanning", "files"),
    "read": ("reading", "files"),
    "embed": ("embedding", "texts"),
    "commit": ("committing", "steps"),
}


def describe(p: Progress) -> str:
    verb, unit = STAGE_WORDS[p.stage]
    text = f"{verb}: {p.done:,}/{p.total:,} {unit}"
    if p.rate:
        text += f", {p.rate:,.1f} {unit}/s"
    if p.eta_s is not None and p.done < p.total:
        text += f", about {format_duration(p.eta_s)} left"
    return text


class ProgressReporter:
    """A ``ProgressSink``: bars on a terminal (``stream.isatty()``), else throttled log lines."""

    def __init__(
        self, stream: TextIO | None = None, *, interval: float = 5.0, bars: bool | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.bars = self.stream.isatty() if bars is None else bars
        self._stage: str | None = None
        self._bar: Any = None
        self._last = 0.0

    def __call__(self, p: Progress) -> None:
        if p.stage == "scan" and p.total == 0:
            return
        if self.bars:
            self._draw(p)
            return
        now = time.monotonic()
        starting = p.stage != self._stage
        if starting:
            self._stage = p.stage
        if p.stage in ("scan", "commit") and p.done < p.total:
            return  # quick steps: only their end is worth a line
        if starting or p.done >= p.total or now - self._last >= self.interval:
            self._last = now
            log.info("%s", describe(p))

    def _draw(self, p: Progress) -> None:
        from tqdm import tqdm

        if p.stage != self._stage:
            self.close()
            self._stage = p.stage
            verb, unit = STAGE_WORDS[p.stage]
            self._bar = tqdm(total=p.total, desc=verb, unit=f" {unit}", file=self.stream, leave=True)
        bar = self._bar
        bar.total = p.total
        bar.update(p.done - bar.n)
        if p.done >= p.total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def summary(report: UpdateReport, index_dir: object) -> list[str]:
    """What an update did, in a few lines: indexed / changed / removed / skipped with reasons."""
    lines = []
    if report.reason:
        lines.append(f"re-read every file: {report.reason}")
    lines.extend(f"warning: {w}" for w in report.warnings)
    lines.append(
        f"indexed {report.documents} documents ({report.passages:,} passages, "
        f"{report.sentences:,} sentences): {len(report.added)} added, {len(report.updated)} changed, "
        f"{len(report.removed)} removed, {report.unchanged} unchanged; {report.embedded:,} texts "
        f"embedded, {report.reused:,} reused, "
        f"in {report.seconds:.1f} s -> {index_dir}"
    )
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} files:")
        lines.extend(f"  {s.path}: {s.reason}" for s in report.skipped)
    return lines
