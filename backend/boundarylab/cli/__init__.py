"""Command line: ``boundarylab train`` (train and print, like the article) and ``boundarylab
serve`` (the web app). The train flags come from the run schema (flags.py); pydantic
validates them, and a bad value is argparse's usage error naming the flag, never a
traceback."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections.abc import Sequence

from pydantic import ValidationError

from boundarylab import __version__
from boundarylab.cli.flags import Flag, Path, add_schema_flags, flag_name, given_sections
from boundarylab.engine.config import CompareConfig, RunConfig
from boundarylab.engine.datasets import make_dataset
from boundarylab.engine.presets import PRESETS

SIGPIPE_EXIT = 141  # what a shell reports for a process ended by SIGPIPE (128 + 13)


def int_list(text: str) -> list[int]:
    """'1,2,3' -> [1, 2, 3] (the sizes of --compare)."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 1,2,3, got {text!r}"
        ) from None


def port_number(text: str) -> int:
    """A TCP port to listen on, 1 to 65535 (as BOUNDARYLAB_PORT takes)."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number, 1 to 65535, got {text!r}")
    return port


def build_parser() -> tuple[argparse.ArgumentParser, list[Flag]]:
    """The parser and the train command's schema flags."""
    parser = argparse.ArgumentParser(
        prog="boundarylab",
        description="Boundary Lab: train the article's network and print its loss (train), "
        "or serve the web app that shows it learning live (serve).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    flags = _add_train(sub)
    _add_serve(sub)
    _add_worker(sub)
    return parser, flags


# argparse's type of `add_subparsers()` (annotations are not evaluated at run time).
Subparsers = argparse._SubParsersAction


def _add_train(sub: Subparsers[argparse.ArgumentParser]) -> list[Flag]:
    """`boundarylab train`: the schema's flags, then how to print and what to compare."""
    train = sub.add_parser(
        "train",
        help="train a network and print its loss",
        description="Train a network and print its loss. Every flag is a field of the run "
        "configuration the web API takes, by its short name or its path (--samples is "
        "--dataset.n_samples); unset flags keep the API's defaults, with one exception: "
        "--report-every is 1000 here, as the article prints.",
    )
    train.set_defaults(subparser=train)  # so errors print the usage of `train`
    flags = add_schema_flags(train)
    out = train.add_argument_group("output")
    out.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="start from a named configuration (flags given override its fields)",
    )
    out.add_argument("--format", choices=("text", "jsonl"), default="text",
                     help="text: the article's lines; jsonl: one JSON object a line")  # fmt: skip
    out.add_argument(
        "--compare",
        type=int_list,
        metavar="SIZES",
        help="train one single-hidden-layer network per size, e.g. 1,2,3,4,5,20,50; each row "
        "is, bit for bit, what a run with --hidden SIZE and the same flags ends with",
    )
    out.add_argument(
        "--sweep",
        metavar="FIELD=V1,V2,…",
        help="train once per value of one field (its dotted path), everything else as the "
        "other flags say, and print a row per value, e.g. training.reg_lambda=0,0.01,0.1; "
        "for a list field separate the values with ';' (model.hidden_sizes='3;8,8')",
    )
    out.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes for --compare and --sweep (default: the CPU count)",
    )
    return flags


def _add_serve(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """`boundarylab serve`: the web app (its other options are BOUNDARYLAB_* settings)."""
    serve = sub.add_parser("serve", help="run the web app")
    serve.set_defaults(subparser=serve)
    serve.add_argument("--host", help="address to bind (default from BOUNDARYLAB_HOST)")
    serve.add_argument("--port", type=port_number, help="TCP port, 1 to 65535 (default from "
                       "BOUNDARYLAB_PORT)")  # fmt: skip
    serve.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"))


def _add_worker(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """`boundarylab worker`: Redis mode's trainer."""
    worker = sub.add_parser(
        "worker",
        help="train runs for web replicas in Redis mode (needs BOUNDARYLAB_REDIS_URL)",
    )
    worker.set_defaults(subparser=worker)
    worker.add_argument(
        "--runs", type=int, default=32, help="runs this worker trains at once (default 32)"
    )


def _validation_message(exc: ValidationError, name_of: dict[Path, str], prefix: str = "") -> str:
    parts = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        if len(loc) >= 2 and loc[:2] in name_of:
            where = name_of[loc[:2]]  # type: ignore[index]
            item = f" {err['input']!r}:" if len(loc) > 2 else ""  # one item of a list
            parts.append(f"{prefix}{where}:{item} {_with_flag_names(err['msg'], name_of)}")
        else:
            parts.append(f"{prefix}{'.'.join(loc)}: {err['msg']}" if loc else err["msg"])
    return "; ".join(parts)


def _with_flag_names(text: str, name_of: dict[Path, str]) -> str:
    """An engine message (naming config fields, for the API) with each field's flag name."""
    for (section, field), name in name_of.items():
        text = re.sub(rf"\b{section}\.{field}\b", name, text)
    return text


def config_from_args(
    parser: argparse.ArgumentParser, flags: list[Flag], args: argparse.Namespace
) -> tuple[RunConfig, dict[Path, str]]:
    """RunConfig from the preset (if any) and the flags given (unset ones keep the schema's
    defaults); also the flag name to blame for each config path."""
    sections, typed = given_sections(flags, args)
    if args.preset is not None:
        preset = PRESETS[args.preset].sections
        merged = {s: {**preset.get(s, {}), **sections.get(s, {})} for s in {*preset, *sections}}
        sections = merged
    name_of = {f.path: flag_name(flags, f.path, typed) for f in flags}
    try:
        return RunConfig.model_validate(sections), name_of
    except ValidationError as exc:
        parser.error(_validation_message(exc, name_of))


def _print_jsonl(obj: dict) -> None:
    # The server's wire format, so a line here reads like a message on the stream.
    from boundarylab.server.messages import dumps

    print(dumps(obj), flush=True)


def _loss_text(loss: float) -> str:
    return f"{loss:f}" if math.isfinite(loss) else "nan"


def run_train(config: RunConfig, fmt: str, name_of: dict[Path, str]) -> int:
    """Train, printing each report; returns the exit status (1 when it diverged)."""
    from boundarylab.engine.training import Trainer
    from boundarylab.server.messages import progress_message

    started = time.perf_counter()
    trainer = Trainer(config)
    every = config.training.report_every
    report = trainer.report()
    while True:
        if fmt == "jsonl":
            _print_jsonl(progress_message(report))
        else:
            print(f"Loss after iteration {report.iteration}: {_loss_text(report.loss)}", flush=True)
        if trainer.done:
            break
        trainer.advance(every - trainer.iteration % every)
        report = trainer.report()
    status = "diverged" if trainer.diverged_message else "completed"
    if fmt == "jsonl":
        summary = {**progress_message(report), "type": "summary", "status": status,
                   "seconds": time.perf_counter() - started}  # fmt: skip
        if trainer.diverged_message:
            summary["message"] = trainer.diverged_message
        _print_jsonl(summary)
    else:
        print(f"Train accuracy: {report.train_accuracy:.4f}")
        if report.test_accuracy is not None:
            print(f"Test accuracy: {report.test_accuracy:.4f}")
        if trainer.diverged_message:
            print(_with_flag_names(trainer.diverged_message, name_of), file=sys.stderr)
    return 1 if trainer.diverged_message else 0


def _cell(value: float | None, width: int, digits: int) -> str:
    if value is None or not math.isfinite(value):
        return f"{'-':>{width}}"
    return f"{value:>{width}.{digits}f}"


def run_compare(config: RunConfig, sizes: list[int], fmt: str, processes: int,
                name_of: dict[Path, str]) -> int:  # fmt: skip
    """Train one network per hidden size; print a table (or JSON lines)."""
    from boundarylab.engine.compare import compare

    started = time.perf_counter()
    results = compare(config, sizes, processes=processes)
    if fmt == "jsonl":
        for row in results:
            _print_jsonl({**row, "type": "compare"})
    else:
        print(f"{'hidden':>6}  {'loss':>9}  {'train_acc':>9}  {'test_acc':>9}  {'seconds':>8}")
        for row in results:
            print(f"{row['hidden_size']:>6}  {_cell(row['loss'], 9, 6)}  "
                  f"{_cell(row['train_accuracy'], 9, 4)}  {_cell(row.get('test_accuracy'), 9, 4)}"
                  f"  {_cell(row['seconds'], 8, 2)}")  # fmt: skip
        print(f"total: {time.perf_counter() - started:.2f} s", flush=True)
    for row in results:
        if row["message"]:
            message = _with_flag_names(row["message"], name_of)
            print(f"hidden {row['hidden_size']}: {message}", file=sys.stderr)
    return 1 if any(row["message"] for row in results) else 0


def run_serve(args: argparse.Namespace) -> int:
    """Serve the web app; a BOUNDARYLAB_* variable it cannot use is one line each, exit 2."""
    from boundarylab.server.settings import SettingsInvalid, get_settings

    try:
        settings = get_settings()  # before the app module, which builds its app on import
    except SettingsInvalid as exc:
        for line in str(exc).splitlines():
            print(f"boundarylab serve: {line}", file=sys.stderr)
        return 2
    if settings.redis_url:
        from boundarylab.server.redis_keys import check_reachable

        problem = check_reachable(settings.redis_url)
        if problem is not None:
            print(f"boundarylab serve: {problem}", file=sys.stderr)
            return 2
    from boundarylab.server.app import serve

    serve(host=args.host, port=args.port, log_level=args.log_level)
    return 0


def run_worker(args: argparse.Namespace) -> int:
    """A Redis mode worker; one line and exit 2 when the settings or Redis are not usable."""
    from boundarylab.server.settings import SettingsInvalid, get_settings

    if args.runs < 1:
        args.subparser.error("--runs: must be at least 1")
    try:
        settings = get_settings()
    except SettingsInvalid as exc:
        for line in str(exc).splitlines():
            print(f"boundarylab worker: {line}", file=sys.stderr)
        return 2
    from boundarylab.server.redis_worker import worker_main_cli

    return worker_main_cli(settings, args.runs)


def _main(argv: Sequence[str] | None) -> int:
    parser, flags = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return run_serve(args)
    if args.command == "worker":
        return run_worker(args)
    parser = args.subparser
    config, name_of = config_from_args(parser, flags, args)
    try:  # what only the points can tell, e.g. a split that empties a class
        make_dataset(config.dataset)
    except ValueError as exc:
        parser.error(_with_flag_names(str(exc), name_of))
    if args.compare is not None and args.sweep is not None:
        parser.error("--compare and --sweep: give one of them (--compare is a sweep of "
                     "model.hidden_sizes)")  # fmt: skip
    if args.compare is None and args.sweep is None:
        return run_train(config, args.format, name_of)
    if args.processes < 1:
        parser.error("--processes: must be at least 1")
    if args.sweep is not None:
        from boundarylab.cli.sweep import parse_sweep, run_sweep

        plan = parse_sweep(parser, flags, config, args.sweep)
        return run_sweep(plan, args.format, args.processes, name_of)
    try:
        CompareConfig(base=config, hidden_sizes=args.compare)
    except ValidationError as exc:
        parser.error(_validation_message(exc, name_of, prefix="--compare "))
    return run_compare(config, args.compare, args.format, args.processes, name_of)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``boundarylab`` command; returns its exit status."""
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`boundarylab train | head -3`): stop quietly, as a program
        # killed by SIGPIPE would. Point stdout at /dev/null so the interpreter's final flush
        # cannot raise again on the way out.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return SIGPIPE_EXIT
