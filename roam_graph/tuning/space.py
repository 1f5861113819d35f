"""Search spaces: which config keys a search varies, and over what, read from YAML.

    # configs/search/roam.yaml
    training.lr: {low: 1.0e-4, high: 1.0e-2, log: true}     # float, log-uniform
    model.sinkhorn_iterations: {low: 10, high: 100, step: 10}  # int (low and high are ints)
    model.expert_form: {choices: [mlp, residual]}             # categorical

Keys are the config keys of ``--set`` (``model.*``, ``training.*``, ``evaluation.*``, top-level);
every key and range is checked when the file is read, with the file and key in the message.
``configs/search/<model>.yaml`` is the default space of each model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import yaml

from roam_graph.data.errors import DataError
from roam_graph.data.textfile import read_text
from roam_graph.training.config import CONFIG_DIR, SECTIONS, yaml_error
from roam_graph.training.config_types import ConfigLoader

SEARCH_DIR = CONFIG_DIR / "search"


class Trial(Protocol):
    """The part of ``optuna.Trial`` a space uses (so this module needs no Optuna)."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False
                      ) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
                    ) -> int: ...

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any: ...


@dataclass(frozen=True)
class Dimension:
    key: str
    kind: str                       # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: int | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Trial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high),
                                     step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log)


@dataclass(frozen=True)
class SearchSpace:
    path: Path
    dimensions: tuple[Dimension, ...]

    def suggest(self, trial: Trial) -> dict[str, Any]:
        """One point: config override key -> value."""
        return {d.key: d.suggest(trial) for d in self.dimensions}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {d.key: {k: v for k, v in (("kind", d.kind), ("low", d.low), ("high", d.high),
                                          ("log", d.log), ("step", d.step),
                                          ("choices", list(d.choices))) if v not in (None, [])}
                for d in self.dimensions}


def default_space_path(model: str) -> Path:
    path = SEARCH_DIR / f"{model}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SEARCH_DIR.glob("*.yaml")))
        raise DataError(f"no default search space for model {model!r} (have: {known}); "
                        "pass --space FILE")
    return path


def load_space(path: Path) -> SearchSpace:
    """Read and check a search-space file (module docstring)."""
    try:  # YAML 1.2 numbers (1e-4), as config files
        raw = yaml.load(read_text(Path(path)), Loader=ConfigLoader)
    except yaml.YAMLError as error:
        raise yaml_error(path, error) from None
    if not isinstance(raw, dict) or not raw:
        raise DataError(f"{path}: a search space maps config keys to ranges, e.g. "
                        "training.lr: {low: 1.0e-4, high: 1.0e-2, log: true}")
    return SearchSpace(Path(path), tuple(_dimension(path, key, spec)
                                         for key, spec in raw.items()))


def _dimension(path: Path, key: str, spec: Any) -> Dimension:
    where = f"{path}: {key}"
    _check_key(where, key)
    if not isinstance(spec, dict):
        raise DataError(f"{where}: expected {{low, high[, log, step]}} or {{choices: [...]}}")
    unknown = sorted(set(spec) - {"low", "high", "log", "step", "choices"})
    if unknown:
        raise DataError(f"{where}: unknown field(s) {unknown}; use low, high, log, step, choices")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise DataError(f"{where}: choices must be a non-empty list")
        return Dimension(key, "categorical", choices=tuple(choices))
    low, high, step, log = spec.get("low"), spec.get("high"), spec.get("step"), spec.get("log")
    numbers = [v for v in (low, high) if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != 2 or not low < high:
        raise DataError(f"{where}: needs numbers low < high, got low={low!r}, high={high!r}")
    if log is not None and not isinstance(log, bool):
        raise DataError(f"{where}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise DataError(f"{where}: a log range needs low > 0, got {low!r}")
    kind = "int" if all(isinstance(v, int) for v in (low, high)) else "float"
    if step is not None and (kind != "int" or not isinstance(step, int) or step < 1):
        raise DataError(f"{where}: step applies to integer ranges and must be an int >= 1")
    return Dimension(key, kind, low, high, bool(log), step)


def _check_key(where: str, key: str) -> None:
    section, _, name = str(key).rpartition(".")
    # SECTIONS[""] is the top level, whose section fields are not keys
    names = {f.name for f in fields(SECTIONS[section])} - set(SECTIONS) \
        if section in SECTIONS else set()
    if name not in names or key in ("model.model", "graph"):
        raise DataError(f"{where}: not a config key a search can vary (model.*, training.*, "
                        "evaluation.* or a top-level key, as in --set)")
