"""`tierml serve --engine ray`: the same routes with the model on Ray Serve replicas (@serve.batch)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import onnxruntime as ort
import pytest

from tests.support.serving import MLP_CONFIG, ServerProcess, call, mlp, write_model

pytest.importorskip("ray.serve", reason="needs the ray extra: pip install 'tierml[ray]'")
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio


@pytest.mark.slow
def test_ray_engine_serves_the_same_protocol_with_batching(tmp_path) -> None:
    write_model(tmp_path, "mlp", mlp(), MLP_CONFIG)
    x = np.random.default_rng(5).standard_normal((3, 64)).astype(np.float32)
    expected = ort.InferenceSession(mlp().SerializeToString()).run(None, {"x": x})[0]
    with ServerProcess(tmp_path, "--engine", "ray", "--replicas", "2", ready_timeout_s=240) as server:
        with triton.InferenceServerClient(f"127.0.0.1:{server.port}") as client:
            assert client.get_model_metadata("mlp")["inputs"][0]["shape"] == [-1, 64]
            assert "schedule_policy" not in client.get_server_metadata()["extensions"]
            for binary in (False, True):
                tensor = triton.InferInput("x", [3, 64], "FP32")
                tensor.set_data_from_numpy(x, binary_data=binary)
                result = client.infer("mlp", [tensor])
                np.testing.assert_allclose(result.as_numpy("y"), expected, rtol=1e-5, atol=1e-5)

        async def burst() -> None:
            async with triton_aio.InferenceServerClient(f"127.0.0.1:{server.port}") as client:
                async def one(i: int) -> None:
                    tensor = triton_aio.InferInput("x", [1, 64], "FP32")
                    tensor.set_data_from_numpy(x[i % 3:i % 3 + 1])
                    y = (await client.infer("mlp", [tensor])).as_numpy("y")
                    np.testing.assert_allclose(y, expected[i % 3:i % 3 + 1], rtol=1e-5, atol=1e-5)

                await asyncio.gather(*(one(i) for i in range(64)))

        asyncio.run(burst())
        stats = json.loads(call(server.port, "GET", "/v2/models/mlp/stats")[2])["model_stats"][0]
        assert stats["inference_count"] == 6 + 64
        assert stats["execution_count"] < stats["inference_count"] - 3, "Ray's @serve.batch batched nothing"
        status, _, body = call(server.port, "POST", "/v2/models/mlp/infer", b"{bad")
        assert status == 400 and b"not valid JSON" in body
        code = server.stop(120)
    assert code == 0, server.output()[-3000:]
