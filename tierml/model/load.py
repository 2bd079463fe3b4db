"""Bring a model into ONNX: .onnx files, PyTorch modules, scikit-learn estimators.

A model is named on the command line by a path: `model.onnx`, a TorchScript `model.pt`, a pickled
scikit-learn estimator (`model.joblib` / `model.pkl`), or a recipe `recipe.py:factory` whose factory
returns a torch.nn.Module, a scikit-learn estimator or an onnx.ModelProto.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from google.protobuf.message import DecodeError, EncodeError

from tierml.errors import TiermlError
from tierml.files import sha256_bytes, sha256_file

Shapes = Mapping[str | None, tuple[int, ...]]


@dataclass
class LoadedModel:
    """An ONNX model and where it came from."""

    proto: onnx.ModelProto
    source: str
    origin: str  # "onnx" | "torch" | "sklearn"
    digest: str = ""  # sha256 of the file the model came from, when it came from an ONNX file

    @property
    def sha256(self) -> str:
        return self.digest or sha256_bytes(serialize(self.proto))


def serialize(model: onnx.ModelProto) -> bytes:
    """The model's bytes; protobuf cannot hold more than 2 GB in one message."""
    try:
        return model.SerializeToString()
    except (ValueError, EncodeError) as exc:
        raise TiermlError(
            f"the model is over 2 GB once its external weights are loaded ({model.ByteSize() / 2**30:.1f} GiB), "
            "which one protobuf message cannot hold; tierml does not analyse models that large yet"
        ) from exc


def load_model(spec: str | Path, input_shapes: Shapes | None = None) -> LoadedModel:
    """Load or convert the model named by `spec` (see the module docstring for the forms)."""
    text = str(spec)
    head, sep, factory = text.rpartition(":")
    if sep and head.endswith(".py") and factory.isidentifier():
        return _from_recipe(Path(head), factory, input_shapes or {})
    path = Path(text)
    if not path.exists():
        raise TiermlError(f"model file '{path}' not found; check the path (or give recipe.py:factory)")
    if path.is_dir():
        raise TiermlError(f"'{path}' is a folder; give the model file inside it (e.g. {path}/model.onnx)")
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth", ".ts"):
        return LoadedModel(from_torch(_load_torchscript(path), input_shapes or {}), str(path), "torch")
    if suffix in (".joblib", ".pkl", ".pickle"):
        return LoadedModel(from_sklearn(_load_pickle(path), input_shapes or {}), str(path), "sklearn")
    return LoadedModel(load_onnx(path), str(path), "onnx", sha256_file(path))


def load_onnx(path: Path) -> onnx.ModelProto:
    """Parse and check an ONNX file, turning every failure into a one-line error."""
    data = path.read_bytes()
    if not data:
        raise TiermlError(f"'{path}' is empty; it is not an ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except DecodeError as exc:
        if _looks_like_onnx(data):
            raise TiermlError(
                f"'{path}' starts like an ONNX model but cannot be parsed ({len(data):,} bytes): it is "
                "truncated or corrupt; re-export or re-download it"
            ) from exc
        raise TiermlError(
            f"'{path}' is not an ONNX model (it does not parse as onnx.ModelProto); export it with "
            "torch.onnx.export or skl2onnx, or give a recipe.py:factory"
        ) from exc
    if model.ir_version == 0 or not model.graph.node:
        raise TiermlError(f"'{path}' is not an ONNX model (no IR version or no graph nodes)")
    try:
        onnx.load_external_data_for_model(model, str(path.parent))
    except (FileNotFoundError, OSError) as exc:
        raise TiermlError(
            f"'{path}' stores weights in an external data file that is missing ({exc}); keep the data "
            "file beside the model"
        ) from exc
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        if not _runtime_accepts(path):  # the checker is stricter than ONNX Runtime: trust what ORT runs
            first = str(exc).strip().splitlines()[0]
            raise TiermlError(f"'{path}' is not a valid ONNX model: {first[:300]}") from exc
    return model


def _runtime_accepts(path: Path) -> bool:
    from tierml.model.session import make_session  # it imports this module

    try:
        make_session(path, threads=None, log_severity=4)
    except Exception:
        return False
    return True


def _looks_like_onnx(data: bytes) -> bool:
    # ModelProto field 1 (ir_version, varint) comes first in every exporter's output: tag 0x08, value 3..15.
    return len(data) > 2 and data[0] == 0x08 and 3 <= data[1] <= 15


def _from_recipe(path: Path, factory: str, input_shapes: Shapes) -> LoadedModel:
    obj = call_recipe(path, factory)
    source = f"{path}:{factory}"
    if isinstance(obj, onnx.ModelProto):
        return LoadedModel(obj, source, "onnx")
    if _is_torch_module(obj):
        return LoadedModel(from_torch(obj, input_shapes), source, "torch")
    if hasattr(obj, "predict") or hasattr(obj, "transform"):
        return LoadedModel(from_sklearn(obj, input_shapes), source, "sklearn")
    raise TiermlError(
        f"'{source}' returned {type(obj).__name__}; it must return a torch.nn.Module, a scikit-learn "
        "estimator or an onnx.ModelProto"
    )


def call_recipe(path: Path, factory: str) -> Any:
    """Import `path` as a module and call its `factory()` (errors inside become one-line user errors)."""
    if not path.exists():
        raise TiermlError(f"recipe file '{path}' not found")
    module_name = f"tierml_recipe_{sha256_bytes(str(path.resolve()).encode())[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise TiermlError(f"importing recipe '{path}' failed: {type(exc).__name__}: {exc}") from exc
    build = getattr(module, factory, None)
    if not callable(build):
        raise TiermlError(f"recipe '{path}' has no callable '{factory}'")
    try:
        return build()
    except Exception as exc:
        raise TiermlError(f"recipe '{path}:{factory}' raised {type(exc).__name__}: {exc}") from exc


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _require_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise TiermlError(
            "PyTorch models need torch: pip install torch==2.13.0 && pip install 'tierml[torch]'"
        ) from exc
    return torch


def _load_torchscript(path: Path) -> Any:
    torch = _require_torch()
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise TiermlError(
            f"'{path}' is not a TorchScript module ({str(exc).splitlines()[0][:200]}); for a state_dict "
            "or a pickled module, give a recipe.py:factory that builds the module and loads the weights"
        ) from exc


def from_torch(module: Any, input_shapes: Shapes, opset: int = 18, dynamic_batch: bool = False) -> onnx.ModelProto:
    """Export a torch.nn.Module with torch.onnx.export at the given input shapes (one per input);
    `dynamic_batch` leaves the first dim of every input free (for serving and batched evaluation)."""
    torch = _require_torch()
    if not input_shapes:
        raise TiermlError(
            "a PyTorch model needs its input shape to be exported: --input-shape input=1x3x224x224"
        )
    names = [name or "input" for name in input_shapes]
    args = tuple(torch.zeros(shape) for shape in input_shapes.values())
    module = module.eval()
    buffer = io.BytesIO()
    with _quiet_exporter():
        _export(torch, module, args, names, opset, buffer, input_shapes, dynamic_batch)
    return onnx.load_model_from_string(buffer.getvalue())


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch.onnx's exporter logs warnings about optional packages (torchvision) on every export."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _export(torch: Any, module: Any, args: tuple, names: list[str], opset: int, buffer: io.BytesIO,
            input_shapes: Shapes, dynamic_batch: bool) -> None:
    try:
        if isinstance(module, torch.jit.ScriptModule):
            torch.onnx.export(module, args, buffer, input_names=names, opset_version=opset, dynamo=False)
        else:
            batch = torch.export.Dim("batch", min=1, max=1 << 16)
            dynamic = tuple({0: batch} for _ in args) if dynamic_batch else None
            program = torch.onnx.export(module, args, input_names=names, opset_version=opset, dynamo=True,
                                        verbose=False, dynamic_shapes=dynamic)
            program.save(buffer)  # type: ignore[union-attr]
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TiermlError(f"torch.onnx.export failed at input shapes {dict(input_shapes)}: {first[:300]}") from exc


def _load_pickle(path: Path) -> Any:
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:
        raise TiermlError(f"'{path}' could not be unpickled as a scikit-learn estimator: {exc}") from exc


def from_sklearn(estimator: Any, input_shapes: Shapes) -> onnx.ModelProto:
    """Convert a fitted scikit-learn estimator with skl2onnx (float input [N, n_features])."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    n_features = getattr(estimator, "n_features_in_", None)
    name, shape = next(iter(input_shapes.items()), (None, None))
    if shape is not None:
        n_features = shape[-1]
    if n_features is None:
        raise TiermlError(
            "the scikit-learn estimator is not fitted (no n_features_in_); fit it first or give "
            "--input-shape input=1xN_FEATURES"
        )
    try:
        return to_onnx(estimator, initial_types=[(name or "input", FloatTensorType([None, int(n_features)]))],
                       options={"zipmap": False} if hasattr(estimator, "predict_proba") else None,
                       target_opset={"": 17, "ai.onnx.ml": 3})
    except Exception as exc:
        raise TiermlError(f"skl2onnx could not convert {type(estimator).__name__}: {exc}") from exc
