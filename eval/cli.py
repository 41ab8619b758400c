"""The ``citeqa`` evaluation commands: eval, calibrate, convert, bench-quality.

Thin wrappers over ``eval.run``, ``eval.report`` and ``eval.convert``; ``service.cli`` calls
``register`` to add them to the one console command.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from eval.convert import BENCHMARKS, SPLITS
from eval.errors import EvalError
from eval.fit import MODEL_FEATURES
from eval.metrics import SUMMARY_KEYS
from eval.report import format_value, summary_group
from service.abstention import FEATURES, PAIRS

if TYPE_CHECKING:
    from eval.metrics import QuestionRecord
    from eval.run import Progress
    from index.embed import Encoder
    from index.search import Mode
    from service.pipeline import AnswerMode
    from service.settings import Settings

DEFAULT_RUNS_DIR = Path("eval/runs")
BENCHMARK_NAMES: tuple[str, ...] = tuple(BENCHMARKS)

TopK = Annotated[int, typer.Option("--top-k", "-k", min=1, max=50, help="Passages retrieved per question.")]
ModeOpt = Annotated[str, typer.Option("--mode", help="Search mode: hybrid, dense or lexical.")]
Datasets = Annotated[
    Path, typer.Option("--datasets", help="Folder holding xquad/ and cmrc2018/ (e.g. ../shared/datasets).")
]


def register(app: typer.Typer) -> None:
    """Add the evaluation commands to ``app``."""
    app.command("eval")(eval_command)
    app.command("calibrate")(calibrate_command)
    app.command("fit-abstention")(fit_abstention_command)
    app.command("rescore")(rescore_command)
    app.command("fit-calibration")(fit_calibration_command)
    app.command("fit-guard")(fit_guard_command)
    app.command("convert")(convert_command)
    app.command("bench-quality")(bench_quality_command)


# -- commands ----------------------------------------------------------------------------------


def eval_command(
    questions: Annotated[
        Path | None, typer.Argument(help="Eval set (JSONL), e.g. eval/seed.jsonl.", show_default=False)
    ] = None,
    documents: Annotated[
        Path | None, typer.Option("--documents", help="Corpus folder (default: CITEQA_DOCUMENTS_DIR).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default: eval/runs/<questions file name>).")
    ] = None,
    top_k: TopK = 10,
    mode: ModeOpt = "hybrid",
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option("--compare", help="Compare two runs (run folders or summary.json files) instead."),
    ] = None,
    answer_mode: Annotated[
        str | None,
        typer.Option(
            "--answer-mode",
            help="extractive, or generated (needs CITEQA_LLM_URL: adds the share of generated sentences "
            "the guard dropped); default: generated when an LLM is configured.",
        ),
    ] = None,
) -> None:
    """Evaluate QUESTIONS through the answering pipeline and write a run folder (or --compare A B)."""
    from eval.report import format_comparison

    with _friendly_errors():
        if compare is not None:
            if questions is not None:
                raise typer.BadParameter("give either QUESTIONS or --compare A B, not both")
            a, b = compare
            typer.echo(
                format_comparison(read_summary(a), read_summary(b), run_name(a), run_name(b)), nl=False
            )
            return
        if questions is None:
            raise typer.BadParameter("missing QUESTIONS (an eval JSONL file) or --compare A B")
        out_dir = out if out is not None else DEFAULT_RUNS_DIR / questions.stem
        if answer_mode not in (None, "extractive", "generated"):
            raise typer.BadParameter("choose extractive or generated", param_hint="--answer-mode")
        summary = _evaluate(
            questions,
            out_dir,
            documents=documents,
            top_k=top_k,
            mode=_mode(mode),
            answer_mode=answer_mode,  # type: ignore[arg-type]
        )
        typer.echo(format_summary(summary))
        if "generation" in summary:
            typer.echo(f"generation: {json.dumps(summary['generation'])}")
        typer.echo(f"wrote {out_dir}/: {', '.join(_output_files())} and plots")


def calibrate_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `citeqa eval`.")],
) -> None:
    """Print the abstention threshold that best separates answerable from unanswerable questions."""
    from eval.report import calibrate_threshold

    with _friendly_errors():
        threshold, table = calibrate_threshold(_read_records(run_dir))
        typer.echo("abstain when the answerer's confidence is below the threshold\n")
        typer.echo(
            f"{'threshold':>10} {'abstained':>9} {'abst.prec':>9} {'abst.rec':>9} "
            f"{'ans.kept':>9} {'bal.acc':>9}"
        )
        for row in table:
            mark = "  <- best" if row.threshold == threshold else ""
            precision = "-" if row.abstain_precision is None else f"{row.abstain_precision:.4f}"
            typer.echo(
                f"{row.threshold:>10.4f} {row.abstained:>9} {precision:>9} {row.abstain_recall:>9.4f} "
                f"{row.answerable_kept:>9.4f} {row.balanced_accuracy:>9.4f}{mark}"
            )
        typer.echo(f"\nsuggested threshold: {threshold:.4f}")
        typer.echo(
            f"try it with CITEQA_ABSTAIN_THRESHOLD={threshold:.4f} (one threshold for every language pair); "
            "the default thresholds are the abstention model's, set per language pair by "
            "`citeqa fit-abstention`"
        )


def fit_abstention_command(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Run folders written by `citeqa eval` (the fit.jsonl of the *-neartopic benchmarks)."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the model here (default: print it only). The shipped one is "
            "service/data/abstention.json.",
        ),
    ] = None,
    l2: Annotated[float, typer.Option("--l2", min=0.0, help="L2 penalty on standardised weights.")] = 1.0,
    keep: Annotated[
        float,
        typer.Option(
            "--keep",
            min=0.5,
            max=1.0,
            help="Share of each pair's answerable questions that every check together keeps answered.",
        ),
    ] = 0.97,
    focus_keep: Annotated[
        float,
        typer.Option(
            "--focus-keep", min=0.5, max=1.0, help="Share of answerable questions the focus check keeps."
        ),
    ] = 0.99,
    min_precision: Annotated[
        float,
        typer.Option(
            "--min-precision", min=0.0, max=1.0, help="Least share of abstentions that must be right."
        ),
    ] = 0.85,
    features: Annotated[
        str,
        typer.Option(
            "--features", help=f"Signals of every pair's model, comma-separated: {', '.join(FEATURES)}."
        ),
    ] = ",".join(MODEL_FEATURES),
) -> None:
    """Fit the abstention model (focus threshold and logistic model per language pair) from eval runs with
    near-topic unanswerable questions."""
    from eval.fit import fit_abstention

    with _friendly_errors():
        records = [record for run_dir in run_dirs for record in _read_records(run_dir)]
        names = [name.strip() for name in features.split(",") if name.strip()]
        model, fits = fit_abstention(
            records,
            l2=l2,
            keep=keep,
            focus_keep=focus_keep,
            min_precision=min_precision,
            min_margin=_settings().abstain_min_margin,
            features={pair: names for pair in PAIRS},
            sources=[str(p) for p in run_dirs],
        )
        typer.echo(
            f"{'pair':<6}{'answerable':>11}{'unanswerable':>13}{'cv AUC':>8}{'margin AUC':>11}{'head AUC':>9}"
            f"{'min_head':>9}{'threshold':>10}{'abst.rec':>9}{'abst.prec':>10}{'ans.kept':>9}"
        )
        for f in fits:
            typer.echo(
                f"{f.pair:<6}{f.n_answerable:>11}{f.n_unanswerable:>13}{format_value('r', f.cv_auc):>8}"
                f"{format_value('r', f.margin_auc):>11}{format_value('r', f.head_auc):>9}"
                f"{f.model.min_head:>9.4f}{f.model.threshold:>10.4f}"
                f"{format_value('r', f.abstain_recall):>9}{format_value('r', f.abstain_precision):>10}"
                f"{format_value('r', f.answerable_kept):>9}"
            )
        for f in fits:
            weights = ", ".join(
                f"{name} {w:+.2f}" for name, w in zip(f.model.features, f.model.weights, strict=True)
            )
            typer.echo(f"{f.pair} weights: {weights}, bias {f.model.bias:+.2f}")
        typer.echo(
            "(on these runs, among questions past the answer-type check and the margin floor; each pair "
            f"keeps {keep:.0%} of its answerable questions answered, with abstentions right "
            f"{min_precision:.0%} of the time, or its model never abstains: threshold 0)"
        )
        _write_fitted(model.to_json(), out, f"; use it with CITEQA_ABSTENTION_MODEL={out}")


def _write_fitted(fitted: object, out: Path | None, hint: str = "") -> None:
    """A fitted model as JSON: to ``out``, or printed when there is none."""
    text = json.dumps(fitted, ensure_ascii=False, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}{hint}")


def rescore_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `citeqa eval`.")],
    out: Annotated[
        Path, typer.Option("--out", help="Write the rescored summary.json and results.jsonl here.")
    ],
    model: Annotated[
        Path | None, typer.Option("--model", help="Abstention model (default: the shipped one).")
    ] = None,
) -> None:
    """Measure an abstention model on a run without running it again (its answers and evidence are
    recorded); exact for runs made with a model that never abstains."""
    from eval.fit import rescore
    from eval.metrics import summarise
    from eval.run import write_results
    from service.abstention import AbstentionModel

    with _friendly_errors():
        try:
            records = rescore(
                _read_records(run_dir), AbstentionModel.load(model), min_margin=_settings().abstain_min_margin
            )
        except ValueError as exc:
            raise EvalError(str(exc)) from exc
        summary = dict(summarise(records))
        summary["config"] = {"rescored_from": str(run_dir), "abstention_model": str(model or "shipped")}
        write_results(out, summary, records)
        typer.echo(format_summary(summary))
        typer.echo(f"wrote {out}/summary.json and results.jsonl")


def fit_calibration_command(
    datasets: Datasets,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the calibration here (default: print it only). The shipped one is "
            "index/data/calibration.json.",
        ),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="listwise: one conditional logit over every pool's candidates, so the pairs share one "
            "scale where pools merge; pointwise: an independent logistic regression per pair.",
        ),
    ] = "listwise",
    l2: Annotated[
        float | None,
        typer.Option(
            "--l2", min=0.0, help="L2 penalty on standardised weights (default: listwise 100, pointwise 1)."
        ),
    ] = None,
) -> None:
    """Fit the search's per-language-pair score calibration on held-out XQuAD articles (see
    eval/fit_calibration.py); print recall@1 per pair on the fitting and the held-out articles."""
    from tqdm import tqdm

    from eval.fit_calibration import METHODS, Method, fit_calibration
    from index.search import FEATURES as SIGNALS

    if method not in METHODS:
        raise typer.BadParameter(f"choose one of {', '.join(METHODS)}", param_hint="--method")
    with _friendly_errors(), tqdm(total=0, unit="q", desc="questions", disable=None) as bar:
        chosen = cast(Method, method)
        calibration, fits, _ = fit_calibration(
            _settings(), datasets, method=chosen, l2=l2, progress=_advance(bar)
        )
        typer.echo(
            f"{'pair':<8}{'questions':>10}{'recall@1 fit':>14}{'held out':>10}"
            f"   weights ({', '.join(SIGNALS)}), bias"
        )
        for f in fits:
            weights = ", ".join(f"{w:+.2f}" for w in f.weights)
            typer.echo(
                f"{f.pair:<8}{f.n_questions:>10}{format_value('r', f.recall_fit):>14}"
                f"{format_value('r', f.recall_held_out):>10}   {weights}, {f.bias:+.2f}"
            )
        _write_fitted(calibration.to_json(), out)


def fit_guard_command(
    datasets: Datasets,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the thresholds here (default: print only). The shipped ones are "
            "service/data/guard.json.",
        ),
    ] = None,
    per_paragraph: Annotated[
        int, typer.Option("--per-paragraph", min=1, help="Questions used per XQuAD paragraph.")
    ] = 2,
    target: Annotated[
        float, typer.Option("--target", min=0.5, max=1.0, help="Precision of kept sentences to reach.")
    ] = 0.95,
) -> None:
    """Fit the grounding guard's similarity threshold per direction on XQuAD (see eval/guard.py); print the
    guard's precision and recall of supported sentences on the fit and report halves."""
    from eval.guard import fit_guard
    from service.guard import Guard, Thresholds
    from service.pipeline import encoder_for

    with _friendly_errors():
        settings = _settings()
        encoder = encoder_for(settings)
        guard = Guard(encoder, Thresholds({}))
        fitted = fit_guard(
            guard,
            datasets,
            per_paragraph=per_paragraph,
            target=target,
            encoder_fingerprint=encoder.fingerprint,
        )
        typer.echo(f"{'pair':<8}{'threshold':>10}{'fit P/R':>16}{'report P/R':>16}  report, by kind")
        for pair, v in fitted["pairs"].items():
            fit, rep = v["fit"], v["report"]
            typer.echo(
                f"{pair:<8}{v['threshold']:>10.4f}{fit['precision']:>9.3f}/{fit['recall']:.3f}"
                f"{rep['precision']:>9.3f}/{rep['recall']:.3f}  {v['report_by_kind']}"
            )
        typer.echo(f"guard latency per sentence (cold passage): {fitted['latency']}")
        _write_fitted(fitted, out)


def convert_command(
    name: Annotated[str, typer.Argument(help=f"Benchmark: {', '.join(BENCHMARK_NAMES)}.")],
    datasets: Datasets,
    out: Annotated[Path, typer.Option("--out", help="Output folder (documents/, questions.jsonl).")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the .txt files of an existing output folder.")
    ] = False,
) -> None:
    """Convert a public benchmark into a corpus folder and an eval set (the data stay outside the repo)."""
    from eval.convert import convert_benchmark

    with _friendly_errors():
        stats = convert_benchmark(name, datasets, out, overwrite=overwrite)
        by_lang = ", ".join(f"{lang} {n}" for lang, n in sorted(stats.questions_by_lang.items()))
        typer.echo(
            f"{name}: {stats.documents} documents, {stats.questions} questions ({by_lang}); "
            f"{stats.dropped_answers} answer texts not in their context dropped -> {out}"
        )
        typer.echo(f"evaluate with: citeqa eval {out / 'questions.jsonl'} --documents {out / 'documents'}")


def bench_quality_command(
    datasets: Datasets,
    out: Annotated[Path, typer.Option("--out", help="Parent folder of the run folders.")] = DEFAULT_RUNS_DIR,
    top_k: TopK = 10,
    mode: ModeOpt = "hybrid",
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Evaluate only this benchmark (repeatable).")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split", help="For the near-topic benchmarks, evaluate only this split: fit or report."
        ),
    ] = None,
) -> None:
    """Convert and evaluate the benchmarks; print recall@1/@5, answer_hit and abstention per benchmark and
    language pair (question -> gold passage). A near-topic benchmark is evaluated per split, into
    <out>/<name>-fit and <out>/<name>-report.

    The converted data go under <data_dir>/benchmarks/ (outside the repository, CC BY-SA 4.0).
    """
    from eval.convert import convert_benchmark
    from service.pipeline import encoder_for

    with _friendly_errors():
        settings = _settings()
        checked_mode = _mode(mode)
        encoder = encoder_for(settings)
        unknown = sorted(set(only or ()) - set(BENCHMARK_NAMES))
        if unknown:
            raise typer.BadParameter(
                f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARK_NAMES)}"
            )
        if split is not None and split not in SPLITS:
            raise typer.BadParameter(f"choose one of {', '.join(SPLITS)}", param_hint="--split")
        summaries: dict[str, Mapping[str, Any]] = {}
        for name in only or BENCHMARK_NAMES:
            data = settings.data_dir / "benchmarks" / name
            convert_benchmark(name, datasets, data, overwrite=True)
            parts = [(name, "questions")]
            if BENCHMARKS[name].swaps:
                parts = [(f"{name}-{s}", s) for s in SPLITS if split in (None, s)]
            for run, questions in parts:
                typer.echo(f"== {run} ==")
                summaries[run] = _evaluate(
                    data / f"{questions}.jsonl",
                    out / run,
                    documents=data / "documents",
                    top_k=top_k,
                    mode=checked_mode,
                    encoder=encoder,
                )
                typer.echo(format_summary(summaries[run]))
        typer.echo(format_bench_table(summaries))


# -- formatting (pure) -------------------------------------------------------------------------


def format_summary(summary: Mapping[str, Any], keys: Sequence[str] = SUMMARY_KEYS) -> str:
    """A plain-text table of ``summary``: one row per metric, one column per group."""
    groups = ["overall", *summary.get("by_lang", {}), *summary.get("by_pair", {})]
    columns = [summary_group(summary, g) for g in groups]
    lines = [f"{'metric':<20}" + "".join(f"{g:>10}" for g in groups)]
    for key in keys:
        lines.append(f"{key:<20}" + "".join(f"{format_value(key, c.get(key)):>10}" for c in columns))
    return "\n".join(lines) + "\n"


def format_bench_table(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    """Retrieval, answer and abstention figures per benchmark and question language (languages with
    questions only)."""
    metrics = ("recall@1", "recall@5", "answer_hit", "abstain_precision", "abstain_recall")
    heads = ("recall@1", "recall@5", "answer_hit", "abst.prec", "abst.rec")
    lines = [f"{'benchmark':<18}{'pair':<9}{'n':>6}" + "".join(f"{h:>11}" for h in heads)]
    for name, summary in summaries.items():
        # Per language pair (question -> gold passage) when the run knows them, else per question language.
        pairs = [g for g, s in summary.get("by_pair", {}).items() if s.get("n")]
        groups = ["overall", *(pairs or (g for g, s in summary.get("by_lang", {}).items() if s.get("n")))]
        for g in groups:
            s = summary_group(summary, g)
            lines.append(
                f"{name:<18}{g:<9}{s.get('n', 0):>6}"
                + "".join(f"{format_value('r', s.get(m)):>11}" for m in metrics)
            )
    return "\n".join(lines) + "\n"


def read_summary(path: Path) -> dict[str, Any]:
    """summary.json of a run folder, or the given summary.json file."""
    file = path / "summary.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EvalError(f"{file} not found; give a run folder or its summary.json") from exc
    except json.JSONDecodeError as exc:
        raise EvalError(f"{file}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict) or "overall" not in data:
        raise EvalError(f"{file}: not a summary written by `citeqa eval` (no 'overall')")
    return data


def run_name(path: Path) -> str:
    """A short column name for a run: its folder name."""
    return (path if path.is_dir() else path.parent).name or str(path)


# -- helpers -----------------------------------------------------------------------------------


def _read_records(run_dir: Path) -> list[QuestionRecord]:
    """The per-question records of a run folder (its results.jsonl)."""
    from eval.metrics import record_from_json

    results = run_dir / "results.jsonl"
    if not results.is_file():
        raise EvalError(f"{results} not found; run `citeqa eval QUESTIONS --out {run_dir}` first")
    lines = results.read_text(encoding="utf-8").splitlines()
    try:
        return [record_from_json(json.loads(line)) for line in lines if line.strip()]
    except (ValueError, KeyError, TypeError) as exc:
        raise EvalError(f"{results}: not a results file written by `citeqa eval` ({exc})") from exc


def _evaluate(
    questions: Path,
    out_dir: Path,
    *,
    documents: Path | None,
    top_k: int,
    mode: Mode,
    encoder: Encoder | None = None,
    answer_mode: AnswerMode | None = None,
) -> dict[str, Any]:
    from tqdm import tqdm

    from eval.run import run
    from service.progress import ProgressReporter

    with tqdm(total=0, unit="q", desc="questions", disable=None) as bar:
        return run(
            questions,
            out_dir,
            settings=_settings(),
            documents=documents,
            top_k=top_k,
            mode=mode,
            encoder=encoder,
            progress=_advance(bar),
            build_progress=ProgressReporter(),
            answer_mode=answer_mode,
        )


def _advance(bar: Any) -> Progress:
    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return progress


def _settings() -> Settings:
    from service.settings import get_settings

    return get_settings()


def _mode(mode: str) -> Mode:
    from index.search import MODES

    for known in MODES:
        if mode == known:
            return known
    raise typer.BadParameter(f"choose one of {', '.join(MODES)}", param_hint="--mode")


def _output_files() -> tuple[str, ...]:
    from eval.run import OUTPUT_FILES

    return OUTPUT_FILES


@contextmanager
def _friendly_errors() -> Iterator[None]:
    from service.cli import friendly_errors

    with friendly_errors():
        yield
