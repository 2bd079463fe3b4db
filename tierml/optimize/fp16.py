"""fp16 weights and activations for GPU tiers (onnxconverter-common), inputs and outputs kept fp32."""

from __future__ import annotations

from pydantic import Field

from tierml.errors import TiermlError
from tierml.optimize.passes import ModelState, Pass, PassConfig, Workspace


class Fp16Config(PassConfig):
    keep_io_types: bool = True  # callers keep sending and receiving fp32
    op_block_list: list[str] = Field(default_factory=list)  # ops to leave in fp32


class Fp16(Pass):
    name = "fp16"
    Config = Fp16Config

    def apply(self, state: ModelState, workspace: Workspace) -> tuple[ModelState, list[str]]:
        from onnxconverter_common import float16

        config: Fp16Config = self.config  # type: ignore[assignment]
        try:
            converted = float16.convert_float_to_float16(
                state.proto, keep_io_types=config.keep_io_types,
                op_block_list=config.op_block_list or None, disable_shape_infer=False)
        except Exception as exc:
            raise TiermlError(f"fp16 conversion failed: {str(exc).splitlines()[0][:300]}") from exc
        notes = ["fp16 runs fast on GPUs; ORT's CPU kernels mostly cast back to fp32"]
        return ModelState(converted, "fp16", state.torch), notes
