"""PyTriton peer for serve_vs_peers.py (runs in its own venv: nvidia-pytriton pins numpy<2).

Real Triton 2.51 (HTTP front end + dynamic batcher) with a Python-backend model that calls ONNX Runtime.
"""

from __future__ import annotations

import numpy as np
from peer_common import arguments
from peer_common import session as ort_session
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def main() -> None:
    parser = arguments()
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--delay-us", type=int, default=0)
    parser.add_argument("--input-dims", required=True, help="non-batch dims, e.g. 64 or 3x320x320")
    args = parser.parse_args()
    session = ort_session(args.model, args.threads)
    input_name = session.get_inputs()[0].name
    outputs = session.get_outputs()

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        results = session.run(None, {input_name: inputs[input_name]})
        return {o.name: r for o, r in zip(outputs, results, strict=True)}

    dims = tuple(int(d) for d in args.input_dims.split("x"))
    config = TritonConfig(http_address="127.0.0.1", http_port=args.port, allow_grpc=False, allow_metrics=False)
    with Triton(config=config) as triton:
        triton.bind(model_name=args.name, infer_func=infer,
                    inputs=[Tensor(name=input_name, dtype=np.float32, shape=dims)],
                    outputs=[Tensor(name=o.name, dtype=np.float32, shape=(-1,) * (len(o.shape) - 1)) for o in outputs],
                    config=ModelConfig(max_batch_size=args.max_batch,
                                       batcher=DynamicBatcher(max_queue_delay_microseconds=args.delay_us)))
        triton.serve()


if __name__ == "__main__":
    main()
