"""ONNX Runtime sessions: the one place tierml opens them, with the execution providers as a parameter.

Every session in tierml comes from `make_session` (a test checks the source), so running a tier on another
execution provider (CUDA, CoreML, NNAPI, XNNPACK, ...) is an argument here, not an edit in each caller.
It knows nothing of timing, serving or what the outputs mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from tierml.errors import TiermlError
from tierml.model.load import serialize

CPU: tuple[str, ...] = ("CPUExecutionProvider",)
Provider = str | tuple[str, dict[str, Any]]  # a name, or a name with its provider options

_LEVELS = {
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def make_session(model: onnx.ModelProto | bytes | Path, threads: int | None = 1, *, optimization: str = "all",
                 profile_dir: Path | None = None, spin: bool = True, log_severity: int = 3,
                 optimized_path: Path | None = None, providers: Sequence[Provider] = CPU) -> ort.InferenceSession:
    """A session on `providers` (CPU unless told), with an explicit thread budget.

    `threads` sets the intra-op threads and runs nodes one at a time (inter-op 1, sequential); None keeps
    ONNX Runtime's own defaults (every core), for sessions that only compute values once.
    `spin=False` stops idle intra-op threads from busy-waiting for the next run: a server needs those
    cycles for its HTTP loop; a timing loop is faster with them spinning.
    A Path is loaded by ONNX Runtime itself, so external weight files beside it are found.
    `optimized_path` is where ONNX Runtime saves the graph it optimized.
    """
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = _LEVELS[optimization]
    options.log_severity_level = log_severity
    if profile_dir is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_dir / "ort_profile")
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    _check_available(providers)
    source = str(model) if isinstance(model, Path) else model if isinstance(model, bytes) else serialize(model)
    return ort.InferenceSession(source, options, providers=list(providers))


def _check_available(providers: Sequence[Provider]) -> None:
    """ONNX Runtime falls back to CPU with only a log line when a provider is missing; a tier must not."""
    available = ort.get_available_providers()
    missing = [name for name in (p if isinstance(p, str) else p[0] for p in providers) if name not in available]
    if missing:
        raise TiermlError(f"execution provider(s) {', '.join(missing)} are not in this ONNX Runtime build "
                          f"({ort.__version__}; it has {', '.join(available)}); install the onnxruntime package "
                          "built for them (e.g. onnxruntime-gpu for CUDAExecutionProvider) or choose one it has")
