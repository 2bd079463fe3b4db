"""kserve ModelServer peer for serve_vs_peers.py (runs in its own venv; binds 0.0.0.0, so the benchmark
runs it inside a private network namespace). No server-side batching: kserve's Python server has none.
"""

from __future__ import annotations

from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from peer_common import arguments, session


class OnnxModel(Model):
    def __init__(self, name: str, path: str, threads: int) -> None:
        super().__init__(name)
        self.session = session(path, threads)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.ready = True

    def predict(self, payload: InferRequest, headers: dict | None = None,
                response_headers: dict | None = None) -> InferResponse:
        feeds = {tensor.name: tensor.as_numpy() for tensor in payload.inputs}
        outputs = []
        for name, array in zip(self.output_names, self.session.run(None, feeds), strict=True):
            output = InferOutput(name=name, shape=list(array.shape), datatype="FP32")
            output.set_data_from_numpy(array, binary_data=payload.use_binary_outputs)
            outputs.append(output)
        return InferResponse(model_name=self.name, infer_outputs=outputs, response_id=payload.id or "")


def main() -> None:
    args = arguments().parse_args()
    # Latency logging off (kserve's default is on) so it pays no more per request than the other servers.
    server = ModelServer(http_port=args.port, workers=1, enable_grpc=False, enable_latency_logging=False)
    server.start([OnnxModel(args.name, args.model, args.threads)])


if __name__ == "__main__":
    main()
