"""The model repository on disk, in Triton's layout: where a model's versions and config live, and how a
version is added so that it is visible only once complete.

    <repo>/<model>/config.pbtxt
    <repo>/<model>/<version>/model.onnx      (a version is a plain number, 1, 2, ...; other names are ignored)

A version, once written, is never rewritten: a new one takes the next number. The config is per model and
follows the latest version. This module knows nothing of serving, builds or what a model is for; the stages
that produce models (optimize, hybrid) write through it and the planner reads through it, so it imports
nothing above tierml.model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import onnx

from tierml.files import atomic_write_text, new_dir, write_synced
from tierml.registry.model_config import UnnamedType, config_text

MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.pbtxt"


def models(repo: Path) -> list[str]:
    """The model folders in `repo`, by name (hidden ones, such as a folder being written, are not models)."""
    return sorted(p.name for p in repo.iterdir() if p.is_dir() and not p.name.startswith("."))


def model_dir(repo: Path, model: str) -> Path:
    return repo / model


def version_dir(repo: Path, model: str, version: int) -> Path:
    return model_dir(repo, model) / str(version)


def model_path(repo: Path, model: str, version: int) -> Path:
    return version_dir(repo, model, version) / MODEL_FILE


def config_path(repo: Path, model: str) -> Path:
    return model_dir(repo, model) / CONFIG_FILE


def versions(repo: Path, model: str) -> dict[int, Path]:
    """Each complete version (a numbered folder holding model.onnx) -> its model file."""
    return {n: folder / MODEL_FILE for n, folder in _numbered(model_dir(repo, model)).items()
            if (folder / MODEL_FILE).exists()}


def latest_model(repo: Path, model: str) -> Path | None:
    """The model file of the highest complete version; None when there is none."""
    found = versions(repo, model)
    return found[max(found)] if found else None


def next_version(repo: Path, model: str) -> int:
    """One past the highest numbered folder, complete or not (a number is never reused); 1 in a fresh repository."""
    return max(_numbered(model_dir(repo, model)), default=0) + 1


def write_version(repo: Path, model: str, files: Mapping[str, bytes], version: int | None = None) -> int:
    """Add a version holding `files` (model.onnx among them) and return its number (the next one unless given).

    The files are written and flushed in a hidden folder beside the versions, which is renamed to the
    number once complete: a reader sees the whole version or none of it, and a write that fails or is
    killed leaves no version behind. A number already taken (by a concurrent writer) raises FileExistsError.
    """
    if MODEL_FILE not in files:
        raise ValueError(f"a version needs a {MODEL_FILE}; got {', '.join(files) or 'no files'}")
    number = next_version(repo, model) if version is None else version
    with new_dir(version_dir(repo, model, number)) as staging:
        for name, data in files.items():
            write_synced(staging / name, data)
    return number


def write_config(repo: Path, model: str, proto: onnx.ModelProto, max_batch_size: int | None = None,
                 instances: int = 0, threads: int = 0) -> None:
    """Write the model's config.pbtxt from `proto` (see `model_config.config_text` for the arguments).

    A graph with a tensor type Triton's config cannot name gets no new config (any existing one is left as
    it is): its version is still written, and `tierml serve` names the tensor when it loads the model.
    """
    try:
        text = config_text(proto, model, max_batch_size, instances, threads)
    except UnnamedType:
        return
    atomic_write_text(config_path(repo, model), text)


def _numbered(folder: Path) -> dict[int, Path]:
    """Sub-folders named as Triton names versions: digits without a leading zero."""
    if not folder.is_dir():
        return {}
    return {int(child.name): child for child in folder.iterdir()
            if child.name.isdigit() and not child.name.startswith("0") and child.is_dir()}
