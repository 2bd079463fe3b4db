"""What both peer servers share (they run in their own venvs, so they cannot import tierml)."""

from __future__ import annotations

import argparse

import onnxruntime as ort


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    return parser


def session(path: str, threads: int) -> ort.InferenceSession:
    """The same session settings as tierml's: explicit intra-op threads, sequential, one inter-op thread."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
