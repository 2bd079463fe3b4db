"""The model repository on disk, in Triton's layout, and the models loaded from it.

    <root>/<model>/config.pbtxt | config.yaml     (optional: auto-completed from the ONNX graph)
    <root>/<model>/<version>/model.onnx            (numeric version folders)

Control modes: `none` loads everything at start; `explicit` loads what it is told, then only through
the load/unload endpoints; `poll` rescans the folder and reloads what changed. A reload builds the new
versions completely before swapping them in, so a failed reload keeps the last good model and a
successful one drops no in-flight request (the old versions finish their queues, then close).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from tierml.errors import TiermlError
from tierml.files import sha256_bytes
from tierml.model.load import load_onnx
from tierml.registry import layout
from tierml.serve.config import CONFIG_FILES, ConfigError, ModelConfig, build_config, read_config_file
from tierml.serve.errors import ServeError, not_found
from tierml.serve.executor import Executor, ExecutorFactory, builtin_executor
from tierml.serve.stats import ModelStats

CONTROL_MODES = ("none", "explicit", "poll")


@dataclass
class ServedVersion:
    """One loaded version: its config, its executor (batcher and instances) and its counters."""

    version: int
    config: ModelConfig
    executor: Executor
    stats: ModelStats
    fingerprint: str


@dataclass
class ServedModel:
    name: str
    versions: dict[int, ServedVersion]

    @property
    def latest(self) -> ServedVersion:
        return self.versions[max(self.versions)]


@dataclass
class ModelStatus:
    """What the repository index reports for a model folder."""

    state: str  # READY | UNAVAILABLE | LOADING
    reason: str = ""
    fingerprint: str = ""


@dataclass
class Repository:
    """Loaded models by name, with load/unload/poll over the folder."""

    root: Path
    reject_status: int = 503
    executor_factory: ExecutorFactory = builtin_executor
    models: dict[str, ServedModel] = field(default_factory=dict)
    states: dict[str, ModelStatus] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.root.is_dir():
            raise TiermlError(f"model repository '{self.root}' is not a folder; lay it out as "
                              "<repo>/<model>/<version>/model.onnx (plus an optional config.pbtxt)")

    def names(self) -> list[str]:
        """Model folders in the repository (loaded or not)."""
        return layout.models(self.root)

    def get(self, name: str, version: int | None = None) -> ServedVersion:
        model = self.models.get(name)
        if model is None:
            state = self.states.get(name)
            detail = f" ({state.state.lower()}: {state.reason})" if state and state.reason else ""
            raise not_found(f"unknown model '{name}'{detail}; loaded models: {', '.join(self.models) or 'none'}")
        if version is None:
            return model.latest
        served = model.versions.get(version)
        if served is None:
            raise not_found(f"model '{name}' has no version {version} loaded (loaded versions: "
                            f"{', '.join(map(str, sorted(model.versions)))})")
        return served

    def ready(self) -> bool:
        return all(s.state == "READY" for s in self.states.values() if s.state != "UNLOADED")

    def load(self, name: str) -> None:
        """Load or reload a model; on failure the previous versions keep serving and the error says why."""
        with self._lock:
            previous = self.models.get(name)
            if previous is None:  # a reload keeps the model READY: its last good version serves meanwhile
                self.states[name] = ModelStatus("LOADING")
            try:
                fresh, fingerprint = self._build(name, previous)
            except (ConfigError, TiermlError, OSError) as exc:
                reason = str(exc)
                if previous or layout.model_dir(self.root, name).is_dir():
                    self.states[name] = ModelStatus("READY" if previous else "UNAVAILABLE", reason,
                                                   _fingerprint(self.root, name))
                else:
                    self.states.pop(name, None)
                raise ServeError(400, f"failed to load model '{name}': {reason}"
                                 + ("; the previous version keeps serving" if previous else "")) from None
            self.models[name] = fresh
            self.states[name] = ModelStatus("READY", fingerprint=fingerprint)
        if previous:
            _close_unused(previous, fresh)

    def unload(self, name: str) -> None:
        """Stop serving a model; requests already queued still get their answers."""
        with self._lock:
            model = self.models.pop(name, None)
            if model is None and name not in self.states:
                raise not_found(f"unknown model '{name}': nothing to unload")
            self.states[name] = ModelStatus("UNLOADED", "unloaded")
        if model:
            for served in model.versions.values():
                served.executor.close()

    def poll(self) -> list[str]:
        """Reload changed models, load new ones, unload removed ones; the problems it met."""
        problems = []
        present = set(self.names())
        for name in sorted(present):
            state = self.states.get(name)
            if state is None or state.fingerprint != _fingerprint(self.root, name):
                try:
                    self.load(name)
                except ServeError as exc:
                    problems.append(str(exc))
        for name in sorted(set(self.models) - present):
            self.unload(name)
        return problems

    def close(self) -> None:
        for name in list(self.models):
            self.unload(name)

    def _build(self, name: str, previous: ServedModel | None) -> tuple[ServedModel, str]:
        folder = layout.model_dir(self.root, name)
        if not folder.is_dir():
            raise ConfigError(f"no folder '{folder}' in the repository")
        fingerprint = _fingerprint(self.root, name)
        raw, config_path = read_config_file(folder)
        available = layout.versions(self.root, name)
        if not available:
            raise ConfigError(f"'{folder}' has no version folder with a model.onnx (expected "
                              f"{layout.model_path(self.root, name, 1)})")
        latest = build_config(raw, name, load_onnx(available[max(available)]), str(config_path or folder))
        chosen = latest.version_policy.select(list(available))
        if not chosen:
            raise ConfigError(f"version_policy of '{name}' selects none of the versions on disk "
                              f"({', '.join(map(str, sorted(available)))})")
        versions: dict[int, ServedVersion] = {}
        try:
            for version in chosen:
                versions[version] = self._version(name, version, available[version], raw, config_path, previous)
        except BaseException:
            for served in versions.values():
                if previous is None or previous.versions.get(served.version) is not served:
                    served.executor.close()
            raise
        return ServedModel(name, versions), fingerprint

    def _version(self, name: str, version: int, path: Path, raw: dict, config_path: Path | None,
                 previous: ServedModel | None) -> ServedVersion:
        fingerprint = _file_key(path) + (_file_key(config_path) if config_path else "")
        old = previous.versions.get(version) if previous else None
        if old is not None and old.fingerprint == fingerprint:
            return old
        proto = load_onnx(path)
        config = build_config(raw, name, proto, f"{config_path or path} (version {version})")
        stats = ModelStats(name, version)
        executor = self.executor_factory(config, proto.SerializeToString(), stats, self.reject_status)
        return ServedVersion(version, config, executor, stats, fingerprint)


def _file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path}:{stat.st_mtime_ns}:{stat.st_size};"


def _fingerprint(root: Path, name: str) -> str:
    """Changes whenever the config or any version's model file changes (mtime or size)."""
    folder = layout.model_dir(root, name)
    if not folder.is_dir():
        return ""
    keys = [_file_key(folder / n) for n in CONFIG_FILES if (folder / n).exists()]
    keys += [_file_key(p) for _, p in sorted(layout.versions(root, name).items())]
    return sha256_bytes("".join(keys).encode())


def _close_unused(previous: ServedModel, fresh: ServedModel) -> None:
    """Close the old versions the reload replaced, in the background: they finish their queues first."""
    kept = {id(v) for v in fresh.versions.values()}
    stale = [v for v in previous.versions.values() if id(v) not in kept]
    if stale:
        threading.Thread(target=lambda: [v.executor.close() for v in stale], name=f"close-{previous.name}",
                         daemon=True).start()
