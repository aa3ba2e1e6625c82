"""The `train` command's flags, generated from the run schema (engine/config.py).

Every RunConfig field a command-line run uses becomes a flag named by its path in the config,
``--dataset.n_samples``, and by a short name, ``--samples``; its type, choices, default and
help text come from the schema, so nothing here repeats a default or a limit. The value is
converted here (so pydantic's strict numbers get numbers) and validated by the schema; an
error names the flag the person typed.
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from boundarylab.engine.config import RunConfig

Path = tuple[str, str]  # (section, field)

# Fields a command-line run has no use for: they pace and draw a run for a page (and own
# points are clicked in or uploaded on the page, or sent to the API).
NOT_FLAGS: frozenset[Path] = frozenset(
    {
        ("training", "steps_per_second"),
        ("view", "resolution"),
        ("view", "max_fps"),
        ("dataset", "points"),
    }
)
# The short name of each flag (the names the command had before flags came from the schema).
SHORT_NAMES: dict[Path, str] = {
    ("dataset", "kind"): "--dataset",
    ("dataset", "n_samples"): "--samples",
    ("dataset", "noise"): "--noise",
    ("dataset", "seed"): "--data-seed",
    ("dataset", "test_fraction"): "--test-fraction",
    ("dataset", "n_classes"): "--classes",
    ("model", "hidden_sizes"): "--hidden",
    ("model", "activation"): "--activation",
    ("model", "loss"): "--loss",
    ("model", "features"): "--features",
    ("training", "learning_rate"): "--learning-rate",
    ("training", "regularization"): "--regularization",
    ("training", "reg_lambda"): "--reg-lambda",
    ("training", "iterations"): "--iterations",
    ("training", "optimizer"): "--optimizer",
    ("training", "batch_size"): "--batch-size",
    ("training", "seed"): "--seed",
    ("training", "report_every"): "--report-every",
}
# Where the command's default differs from the schema's: the article prints every 1000 steps.
CLI_DEFAULTS: dict[Path, Any] = {("training", "report_every"): 1000}
NONE_WORDS = ("", "none")


@dataclass(frozen=True)
class Flag:
    """One schema field as a flag: ``convert`` turns the typed text into the field's type."""

    path: Path
    names: tuple[str, ...]
    convert: Callable[[str], Any]
    choices: tuple[str, ...] | None
    metavar: str
    help: str

    @property
    def dest(self) -> str:
        return ".".join(self.path)


def _number(kind: type) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise ValueError(f"expected {what}, got {text!r}") from None

    return convert


def _optional(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def optional(text: str) -> Any:
        return None if text.strip().lower() in NONE_WORDS else convert(text)

    return optional


def _listed(convert: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """Comma-separated items; '' or 'none' is the empty list."""

    def listed(text: str) -> list[Any]:
        text = text.strip()
        if text.lower() in NONE_WORDS:
            return []
        return [convert(part.strip()) for part in text.split(",")]

    return listed


def _converter(annotation: Any) -> tuple[Callable[[str], Any], tuple[str, ...] | None, str]:
    """(convert, choices, metavar) for a field's type annotation."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType) and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        convert, choices, metavar = _converter(inner)
        return _optional(convert), choices, metavar
    if origin is Literal:
        return str, tuple(str(a) for a in args), "{" + ",".join(map(str, args)) + "}"
    if origin is list:
        item_convert, choices, item = _converter(args[0])
        metavar = "NAME,…" if choices else f"{item},…"
        return _listed(item_convert), choices, metavar
    if origin is Annotated:
        return _converter(args[0])  # Annotated[int, Field(...)]
    if annotation is int:
        return _number(int), None, "N"
    if annotation is float:
        return _number(float), None, "X"
    return str, None, "TEXT"  # pragma: no cover (no such field today)


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(map(str, value)) if value else "none (empty)"
    return str(value)


def _help(path: Path, info: FieldInfo, choices: tuple[str, ...] | None) -> str:
    default = info.get_default(call_default_factory=True)
    text = (info.description or "").rstrip(".") + "."
    if get_origin(info.annotation) is list:
        text += " Comma-separated; none for an empty list."
        if choices:
            text += f" Names: {', '.join(choices)}."
    if path in CLI_DEFAULTS:
        text += f" Default here: {_shown(CLI_DEFAULTS[path])} (the API's: {_shown(default)})."
    else:
        text += f" Default: {_shown(default)}."
    return text.replace("%", "%%")  # argparse formats help with %


def schema_flags() -> list[Flag]:
    """A flag per RunConfig field a command-line run uses, in schema order."""
    flags = []
    for section, section_info in RunConfig.model_fields.items():
        model = section_info.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        for name, info in model.model_fields.items():
            path = (section, name)
            if path in NOT_FLAGS:
                continue
            convert, choices, metavar = _converter(info.annotation)
            names = (*((SHORT_NAMES[path],) if path in SHORT_NAMES else ()), f"--{section}.{name}")
            flags.append(Flag(path, names, convert, choices, metavar, _help(path, info, choices)))
    return flags


class _Store(argparse.Action):
    """Converts and stores a flag's value with the name it was typed as, so a later schema
    error can name that flag."""

    def __init__(self, option_strings: list[str], dest: str, flag: Flag, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.flag = flag

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:  # fmt: skip
        typed = option_string or self.flag.names[0]
        try:
            value = self.flag.convert(str(values))
        except ValueError as exc:
            parser.error(f"{typed}: {exc}")
        items = value if isinstance(value, list) else [value]
        if self.flag.choices:
            bad = [v for v in items if v is not None and v not in self.flag.choices]
            if bad:
                parser.error(f"{typed}: invalid choice {bad[0]!r} (choose from "
                             f"{', '.join(self.flag.choices)})")  # fmt: skip
        setattr(namespace, self.dest, (value, typed))


def add_schema_flags(parser: argparse.ArgumentParser) -> list[Flag]:
    """Add a group of flags per config section to ``parser``; returns the flags."""
    flags = schema_flags()
    groups: dict[str, Any] = {}
    for flag in flags:
        section = flag.path[0]
        if section not in groups:
            groups[section] = parser.add_argument_group(section)
        groups[section].add_argument(
            *flag.names, action=_Store, flag=flag, dest=flag.dest, metavar=flag.metavar,
            help=flag.help, default=None,
        )  # fmt: skip
    return flags


def given_sections(
    flags: list[Flag], args: argparse.Namespace
) -> tuple[dict[str, dict[str, Any]], dict[Path, str]]:
    """(config sections from the flags given plus the command's own defaults, the flag name
    that set each path) from parsed ``args``."""
    sections: dict[str, dict[str, Any]] = {}
    typed: dict[Path, str] = {}
    for flag in flags:
        given = getattr(args, flag.dest, None)
        if given is None and flag.path in CLI_DEFAULTS:
            given = (CLI_DEFAULTS[flag.path], flag.names[0])
        if given is not None:
            value, name = given
            sections.setdefault(flag.path[0], {})[flag.path[1]] = value
            typed[flag.path] = name
    return sections, typed


def flag_name(flags: list[Flag], path: Path, typed: dict[Path, str]) -> str:
    """The name to blame for ``path``: as typed, else the flag's short name."""
    if path in typed:
        return typed[path]
    return next((f.names[0] for f in flags if f.path == path), ".".join(path))
