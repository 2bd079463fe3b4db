"""What the tests share, and the benchmarks reuse: nothing here is collected as a test.

- paths: the repository root and the bundled digits example.
- cli: `run_tierml`, the one way tests run the `tierml` command.
- onnx_models: small ONNX graphs built in code (make_model, a residual block, a blocked-layout graph).
- torch_models: PyTorch models with independently known MAC counts.
- references: what tierml's answers are checked against (whole-model outputs, an independent executor).
- calibration: a synthetic host calibration for unit tests.
- serving, serve_models: a model repository, raw HTTP calls and `tierml serve` as a child process.
- openloop: the open-loop (and closed-loop) HTTP load generator.
- mcu_models: the MCU export's reference models.
- pretrained: real pretrained ONNX models fetched from PyPI wheels.
"""
