"""Command line: ``boundarylab train`` (train and print, like the article) and ``boundarylab
serve`` (the web app). Flags mirror RunConfig; pydantic validates them, and a bad value is
argparse's usage error naming the field, never a traceback."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, get_args

from pydantic import ValidationError

from boundarylab import __version__
from boundarylab.engine.config import (
    Activation,
    CompareConfig,
    DatasetKind,
    LossName,
    OptimizerName,
    RunConfig,
)
from boundarylab.engine.datasets import make_dataset

# Where each `train` flag lands in RunConfig: dest -> (section, field).
FIELDS: dict[str, tuple[str, str]] = {
    "dataset": ("dataset", "kind"),
    "samples": ("dataset", "n_samples"),
    "noise": ("dataset", "noise"),
    "data_seed": ("dataset", "seed"),
    "test_fraction": ("dataset", "test_fraction"),
    "classes": ("dataset", "n_classes"),
    "hidden": ("model", "hidden_sizes"),
    "activation": ("model", "activation"),
    "loss": ("model", "loss"),
    "learning_rate": ("training", "learning_rate"),
    "reg_lambda": ("training", "reg_lambda"),
    "iterations": ("training", "iterations"),
    "optimizer": ("training", "optimizer"),
    "batch_size": ("training", "batch_size"),
    "seed": ("training", "seed"),
    "report_every": ("training", "report_every"),
}


def int_list(text: str) -> list[int]:
    """'8,4' -> [8, 4]; '' or 'none' -> [] (no hidden layer: the article's perceptron)."""
    text = text.strip()
    if text.lower() in ("", "none"):
        return []
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 3 or 8,4, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="boundarylab",
        description="Boundary Lab: train the article's network and print its loss (train), "
        "or serve the web app that shows it learning live (serve).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a network and print its loss")
    train.set_defaults(subparser=train)  # so errors print the usage of `train`
    data = train.add_argument_group("data")
    data.add_argument("--dataset", choices=get_args(DatasetKind), help="default moons")
    data.add_argument("--samples", type=int, help="points, train and test (default 300)")
    data.add_argument("--noise", type=float, help="default 0.2")
    data.add_argument("--data-seed", type=int, help="default 0")
    data.add_argument("--test-fraction", type=float, help="held out share (default 0)")
    data.add_argument("--classes", type=int, help="classes of the blobs dataset (default 3)")
    model = train.add_argument_group("model")
    model.add_argument("--hidden", type=int_list, help="hidden sizes, e.g. 3 or 8,4 (default 3)")
    model.add_argument("--activation", choices=get_args(Activation), help="default tanh")
    model.add_argument("--loss", choices=get_args(LossName), help="default cross_entropy")
    fit = train.add_argument_group("training")
    fit.add_argument("--learning-rate", type=float, help="ε on the summed gradient (0.01)")
    fit.add_argument("--reg-lambda", type=float, help="L2 strength λ (default 0.01)")
    fit.add_argument("--iterations", type=int, help="gradient steps (default 20000)")
    fit.add_argument("--optimizer", choices=get_args(OptimizerName), help="default gd")
    fit.add_argument("--batch-size", type=int, help="mini-batch size (default: full batch)")
    fit.add_argument("--seed", type=int, help="initialisation seed (default 0)")
    fit.add_argument("--report-every", type=int, default=1000, help="default 1000")
    out = train.add_argument_group("output")
    out.add_argument("--format", choices=("text", "jsonl"), default="text")
    out.add_argument(
        "--compare",
        type=int_list,
        metavar="SIZES",
        help="train one single-hidden-layer network per size, e.g. 1,2,3,4,5,20,50",
    )
    out.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes for --compare (default: the CPU count)",
    )
    serve = sub.add_parser("serve", help="run the web app")
    serve.set_defaults(subparser=serve)
    serve.add_argument("--host", help="address to bind (default from BOUNDARYLAB_HOST)")
    serve.add_argument("--port", type=int, help="TCP port (default from BOUNDARYLAB_PORT)")
    serve.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"))
    return parser


def _validation_message(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{prefix}{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> RunConfig:
    """RunConfig from the flags given (unset flags keep the schema's defaults)."""
    sections: dict[str, dict[str, Any]] = {}
    for dest, (section, field) in FIELDS.items():
        value = getattr(args, dest)
        if value is not None:
            sections.setdefault(section, {})[field] = value
    try:
        return RunConfig.model_validate(sections)
    except ValidationError as exc:
        parser.error(_validation_message(exc))


def _print_jsonl(obj: dict) -> None:
    # The server's wire format, so a line here reads like a message on the stream.
    from boundarylab.server.messages import dumps

    print(dumps(obj), flush=True)


def _loss_text(loss: float) -> str:
    return f"{loss:f}" if math.isfinite(loss) else "nan"


def run_train(config: RunConfig, fmt: str) -> int:
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
            print(trainer.diverged_message, file=sys.stderr)
    return 1 if trainer.diverged_message else 0


def _cell(value: float | None, width: int, digits: int) -> str:
    if value is None or not math.isfinite(value):
        return f"{'-':>{width}}"
    return f"{value:>{width}.{digits}f}"


def run_compare(config: RunConfig, sizes: list[int], fmt: str, processes: int) -> int:
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
        print(f"total: {time.perf_counter() - started:.2f} s")
    for row in results:
        if row["message"]:
            print(f"hidden {row['hidden_size']}: {row['message']}", file=sys.stderr)
    return 1 if any(row["message"] for row in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        from boundarylab.server.app import serve

        serve(host=args.host, port=args.port, log_level=args.log_level)
        return 0
    parser = args.subparser
    config = config_from_args(parser, args)
    try:  # what the schema cannot see alone, e.g. a split that empties a class
        make_dataset(config.dataset)
    except ValueError as exc:
        parser.error(str(exc))
    if args.compare is None:
        return run_train(config, args.format)
    if args.processes < 1:
        parser.error("--processes: must be at least 1")
    try:
        CompareConfig(base=config, hidden_sizes=args.compare)
    except ValidationError as exc:
        parser.error(_validation_message(exc, prefix="--compare "))
    return run_compare(config, args.compare, args.format, args.processes)


if __name__ == "__main__":
    sys.exit(main())
