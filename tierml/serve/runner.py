"""One model instance: an ONNX Runtime session with its own intra-op thread budget."""

from __future__ import annotations

import numpy as np
import onnx

from tierml.model.session import make_session


class Runner:
    """Runs whole batches; one per instance, used by one batcher thread at a time."""

    def __init__(self, model: onnx.ModelProto | bytes, threads: int, spin: bool = True) -> None:
        self.session = make_session(model, threads, spin=spin)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds), strict=True))
