"""Reports of a batch run: report.md with plots, TREC files, comparisons, abstention calibration.

Plots are drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend
state), with ASCII labels only so no CJK font is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.dataset import LANGS
from eval.errors import EvalError
from eval.metrics import SUMMARY_KEYS, QuestionRecord, answer_hit, recall_at_k

RECALL_CURVE_KS: tuple[int, ...] = tuple(range(1, 11))
_MAX_LISTED = 20


@dataclass(frozen=True, slots=True)
class ThresholdRow:
    """Abstention at one threshold: abstain when the item's score is below ``threshold``.

    Positive class is "unanswerable". ``answerable_kept`` is the share of answerable items
    answered (score >= threshold); ``balanced_accuracy`` the mean of it and ``abstain_recall``.
    """

    threshold: float
    abstained: int
    abstain_precision: float | None
    abstain_recall: float
    answerable_kept: float
    balanced_accuracy: float
    f1: float


def confidence_of(record: QuestionRecord) -> float:
    """The score that calibration thresholds: -inf when a check before the model abstained (the answer
    type, the margin, the focus: abstain at any threshold), else the answerer's confidence if set, else
    the top passage score, else -inf (nothing retrieved)."""
    if record.reason is not None and record.reason != "low_confidence":
        return -math.inf
    if record.confidence is not None:
        return record.confidence
    top = record.top_score
    return -math.inf if top is None else top


def calibrate_threshold(records: Sequence[QuestionRecord]) -> tuple[float, list[ThresholdRow]]:
    """The abstention threshold that best separates answerable from unanswerable items.

    Rule: abstain when ``confidence_of(record) < threshold``. Candidates are the midpoints between
    consecutive distinct scores plus the two extremes (the lowest score: abstain on nothing
    scored; just above the highest: abstain on everything). The chosen one maximises balanced
    accuracy -- the mean of abstain recall on unanswerable items and the share of answerable items
    kept -- which, unlike accuracy or F1, does not reward always abstaining when the eval set holds
    few answerable items (or never abstaining when it holds few unanswerable ones). Ties go to the
    higher abstention F1, then to the lower threshold (abstain less).

    Returns the threshold and a small table (about eleven candidates spread over the range, plus
    the chosen one), sorted by threshold.
    """
    scored = [(confidence_of(r), r.answerable) for r in records]
    n_answerable = sum(1 for _, ans in scored if ans)
    n_unanswerable = len(scored) - n_answerable
    if n_answerable == 0 or n_unanswerable == 0:
        raise EvalError(
            "calibrating the abstention threshold needs answerable and unanswerable records "
            f"(got {n_answerable} answerable, {n_unanswerable} unanswerable)"
        )
    finite = sorted({s for s, _ in scored if math.isfinite(s)})
    if finite:
        candidates = [finite[0]]
        candidates += [(lo + hi) / 2 for lo, hi in zip(finite, finite[1:], strict=False)]
        candidates.append(math.nextafter(finite[-1], math.inf))
    else:
        candidates = [0.0]
    rows = [_threshold_row(t, scored, n_answerable, n_unanswerable) for t in candidates]
    best = max(rows, key=lambda row: (row.balanced_accuracy, row.f1, -row.threshold))
    step = max(1, (len(rows) - 1) // 10)
    shown = {id(row): row for row in rows[::step] + [rows[-1], best]}
    return best.threshold, sorted(shown.values(), key=lambda row: row.threshold)


def write_trec_run(path: str | Path, records: Sequence[QuestionRecord], run_name: str) -> None:
    """A TREC run file: ``qid Q0 docid rank score run`` per retrieved passage, ranks from 1."""
    _check_token(run_name, "run name")
    lines = []
    for r in records:
        _check_token(r.item_id, "question id")
        for rank, (pid, score) in enumerate(zip(r.passage_ids, r.scores, strict=True), start=1):
            _check_token(pid, "passage id")
            lines.append(f"{r.item_id} Q0 {pid} {rank} {score:.6f} {run_name}\n")
    Path(path).write_text("".join(lines), encoding="utf-8")


def write_trec_qrels(path: str | Path, records: Sequence[QuestionRecord]) -> None:
    """TREC qrels (``qid 0 docid 1``) for the retrieved passages judged relevant.

    Only retrieved passages carry judgements in a record, so these qrels are "judged in the run",
    the same convention as nDCG without a known relevant count.
    """
    lines = []
    for r in records:
        for pid, rel in zip(r.passage_ids, r.relevant, strict=True):
            if rel:
                lines.append(f"{r.item_id} 0 {pid} 1\n")
    Path(path).write_text("".join(lines), encoding="utf-8")


def format_comparison(
    summary_a: Mapping[str, Any], summary_b: Mapping[str, Any], name_a: str, name_b: str
) -> str:
    """Two summaries side by side, one block per group (overall, then each language), with the
    delta ``b - a``. Missing or null values print as ``-``."""
    width = max(len(name_a), len(name_b), 10)
    out: list[str] = []
    for group in _group_names(summary_a, summary_b):
        a = summary_group(summary_a, group)
        b = summary_group(summary_b, group)
        keys = [k for k in SUMMARY_KEYS if k in a or k in b]
        keys += sorted((set(a) | set(b)) - set(SUMMARY_KEYS))
        out.append(f"== {group} ==")
        out.append(f"{'metric':<20} {name_a:>{width}} {name_b:>{width}} {'delta':>10}")
        for key in keys:
            va, vb = a.get(key), b.get(key)
            delta = _delta(key, va, vb)
            out.append(
                f"{key:<20} {format_value(key, va):>{width}} {format_value(key, vb):>{width}} {delta:>10}"
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_report(
    out_dir: str | Path, summary: Mapping[str, Any], records: Sequence[QuestionRecord]
) -> list[Path]:
    """Write report.md, recall_at_k.png and top_score_hist.png into ``out_dir``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    threshold: float | None = None
    table: list[ThresholdRow] = []
    if any(r.answerable for r in records) and any(not r.answerable for r in records):
        threshold, table = calibrate_threshold(records)
    recall_png = out / "recall_at_k.png"
    hist_png = out / "top_score_hist.png"
    plot_recall_curves(recall_png, records)
    plot_top_scores(hist_png, records, threshold)
    report_md = out / "report.md"
    report_md.write_text(
        render_report(summary, records, threshold, table, recall_png.name, hist_png.name), encoding="utf-8"
    )
    return [report_md, recall_png, hist_png]


def recall_curves(records: Sequence[QuestionRecord]) -> dict[str, list[float]]:
    """recall@k for k in ``RECALL_CURVE_KS``: overall and per language with answerable records."""
    groups: dict[str, list[QuestionRecord]] = {"overall": [r for r in records if r.answerable]}
    present = {r.lang for r in records}
    for lang in [lang for lang in LANGS if lang in present] + sorted(present - set(LANGS)):
        groups[lang] = [r for r in records if r.answerable and r.lang == lang]
    curves: dict[str, list[float]] = {}
    for name, group in groups.items():
        if group:
            curves[name] = [recall_at_k([r.relevant for r in group], k) or 0.0 for k in RECALL_CURVE_KS]
    return curves


def plot_recall_curves(path: Path, records: Sequence[QuestionRecord]) -> None:
    """Line plot of recall@k, k = 1..10, per language (and overall)."""
    fig, ax = _figure()
    for name, values in recall_curves(records).items():
        ax.plot(RECALL_CURVE_KS, values, marker="o", label=name, linestyle="--" if name == "overall" else "-")
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k (answerable items)")
    ax.set_xticks(list(RECALL_CURVE_KS))
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.set_title("Retrieval recall@k")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.savefig(path, dpi=100)


def plot_top_scores(path: Path, records: Sequence[QuestionRecord], threshold: float | None = None) -> None:
    """Histogram of the score that abstention thresholds (the answerer's confidence, else the top passage
    score), answerable vs unanswerable items, with the calibrated threshold on the same scale. Scores of
    answers refused outright (no sentence can state the kind of answer asked for) sit far below the rest
    and are drawn at the left edge."""
    fig, ax = _figure()
    scores = [(confidence_of(r), r.answerable) for r in records]
    finite = [c for c, _ in scores if math.isfinite(c) and c > -0.5]
    floor = min(finite) if finite else 0.0
    answerable = [max(c, floor) for c, a in scores if a and math.isfinite(c)]
    unanswerable = [max(c, floor) for c, a in scores if not a and math.isfinite(c)]
    both = answerable + unanswerable
    if both:
        lo, hi = min(both), max(both)
        bins = [lo + (hi - lo) * i / 20 for i in range(21)] if hi > lo else [lo - 0.5, lo + 0.5]
        if answerable:
            ax.hist(answerable, bins=bins, alpha=0.6, label=f"answerable (n={len(answerable)})")
        if unanswerable:
            ax.hist(unanswerable, bins=bins, alpha=0.6, label=f"unanswerable (n={len(unanswerable)})")
    if threshold is not None and math.isfinite(threshold):
        ax.axvline(threshold, color="black", linestyle=":", label=f"calibrated threshold {threshold:.3f}")
    ax.set_xlabel("abstention score (answerer confidence)")
    ax.set_ylabel("questions")
    ax.set_title("Abstention score by answerability")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.savefig(path, dpi=100)


def render_report(
    summary: Mapping[str, Any],
    records: Sequence[QuestionRecord],
    threshold: float | None,
    table: Sequence[ThresholdRow],
    recall_png: str,
    hist_png: str,
) -> str:
    """The Markdown text of report.md."""
    groups = _group_names(summary)
    lines = ["# CiteQA evaluation report", ""]
    lines += ["## Summary", "", "| metric | " + " | ".join(groups) + " |", "|---" * (len(groups) + 1) + "|"]
    for key in SUMMARY_KEYS:
        cells = [format_value(key, summary_group(summary, g).get(key)) for g in groups]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Retrieval metrics are over answerable items; answer_hit counts an abstention on an answerable "
        "item as a miss; abstention's positive class is an unanswerable item.",
        "",
        "## Plots",
        "",
        f"![recall@k per language]({recall_png})",
        "",
        f"![top passage score, answerable vs unanswerable]({hist_png})",
        "",
        "## Abstention threshold",
        "",
    ]
    if threshold is None:
        lines.append("Not calibrated: the run needs both answerable and unanswerable items.")
    else:
        lines += [
            "Best threshold (abstain when the score is below it; maximises balanced accuracy): "
            f"**{threshold:.4f}**",
            "",
            "| threshold | abstained | abstain precision | abstain recall | answerable kept "
            "| balanced acc. |",
            "|---|---|---|---|---|---|",
        ]
        for row in table:
            lines.append(
                f"| {row.threshold:.4f} | {row.abstained} | {format_value('', row.abstain_precision)} | "
                f"{row.abstain_recall:.4f} | {row.answerable_kept:.4f} | {row.balanced_accuracy:.4f} |"
            )
    lines += ["", *_failures(records)]
    return "\n".join(lines).rstrip() + "\n"


def _failures(records: Sequence[QuestionRecord]) -> list[str]:
    retrieval = [r for r in records if r.answerable and not any(r.relevant[:10])]
    answers = [
        r for r in records if r.answerable and (r.abstained or not answer_hit(r.answer, r.gold_answers))
    ]
    answered = [r for r in records if not r.answerable and not r.abstained]
    lines: list[str] = []
    for title, group, show in (
        ("Answerable, no relevant passage in the top 10", retrieval, _show_retrieval),
        ("Answerable, answer misses every gold span", answers, _show_answer),
        ("Unanswerable, but answered", answered, _show_answer),
    ):
        lines += [f"## {title} ({len(group)})", ""]
        lines += [show(r) for r in group[:_MAX_LISTED]]
        if len(group) > _MAX_LISTED:
            lines.append(f"- ... and {len(group) - _MAX_LISTED} more")
        lines.append("")
    return lines


def _show_retrieval(r: QuestionRecord) -> str:
    top = r.passage_ids[0] if r.passage_ids else "(nothing retrieved)"
    return f"- `{r.item_id}` [{r.lang}] {_one_line(r.question)} -- top passage `{top}`"


def _show_answer(r: QuestionRecord) -> str:
    answer = "(abstained)" if r.abstained else _one_line(r.answer)[:160]
    gold = " / ".join(r.gold_answers) if r.gold_answers else "(none)"
    return f"- `{r.item_id}` [{r.lang}] {_one_line(r.question)} -- answer: {answer} -- gold: {gold}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _threshold_row(
    threshold: float, scored: Sequence[tuple[float, bool]], n_answerable: int, n_unanswerable: int
) -> ThresholdRow:
    abstained_unans = sum(1 for s, ans in scored if s < threshold and not ans)
    abstained = sum(1 for s, _ in scored if s < threshold)
    kept = sum(1 for s, ans in scored if s >= threshold and ans)
    precision = abstained_unans / abstained if abstained else None
    recall = abstained_unans / n_unanswerable
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return ThresholdRow(
        threshold=threshold,
        abstained=abstained,
        abstain_precision=precision,
        abstain_recall=recall,
        answerable_kept=kept / n_answerable,
        balanced_accuracy=(recall + kept / n_answerable) / 2,
        f1=f1,
    )


def _figure() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise EvalError(
            "plots need matplotlib: run `pip install matplotlib` (or `pip install -e .`)"
        ) from exc
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _group_names(*summaries: Mapping[str, Any]) -> list[str]:
    """ "overall", then the languages in the order the summaries list them."""
    names = ["overall"]
    for summary in summaries:
        names += [lang for lang in summary.get("by_lang", {}) if lang not in names]
    return names


def summary_group(summary: Mapping[str, Any], group: str) -> Mapping[str, Any]:
    groups = summary.get("by_pair", {}) if "-" in group else summary.get("by_lang", {})
    found = summary.get("overall", {}) if group == "overall" else groups.get(group, {})
    return found if isinstance(found, Mapping) else {}


def format_value(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool | int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.1f}" if key.startswith("latency") else f"{value:.4f}"
    return str(value)


def _delta(key: str, a: Any, b: Any) -> str:
    numbers = (int, float)
    if not isinstance(a, numbers) or not isinstance(b, numbers) or isinstance(a, bool) or isinstance(b, bool):
        return "-"
    diff = b - a
    if isinstance(diff, int):
        return f"{diff:+d}"
    return f"{diff:+.1f}" if key.startswith("latency") else f"{diff:+.4f}"


def _check_token(value: str, what: str) -> None:
    if not value or any(ch.isspace() for ch in value):
        raise EvalError(f"TREC files need a {what} without whitespace, got {value!r}")
