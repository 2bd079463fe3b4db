"""Knowledge distillation (Hinton et al.): a student trained on the teacher's softened outputs.

The teacher is the model being optimized, run with ONNX Runtime (so any ONNX model can teach); the
student is a small PyTorch network from `students.py`, exported back to ONNX.
"""

from __future__ import annotations

from tierml.data.scoring import run
from tierml.optimize.passes import ModelState, Pass, PassConfig, TorchModel, Workspace
from tierml.optimize.students import parameters, student
from tierml.optimize.training import train
from tierml.optimize.twin import export


class DistillConfig(PassConfig):
    width: int = 8
    depth: int = 3
    temperature: float = 4.0
    alpha: float = 0.7  # weight of the soft-target loss (the rest is cross-entropy with labels)
    epochs: int = 30
    lr: float = 3e-3


def distill(state: ModelState, workspace: Workspace, config: DistillConfig, name: str) -> ModelState:
    data = workspace.require(name, workspace.train, "training data")
    teacher = run(state.proto, data.x, workspace.threads)
    input_name = state.proto.graph.input[0].name
    shape = (1, *data.x.shape[1:])
    module = student(shape, teacher.shape[-1], config.width, config.depth)
    train(module, data, config.epochs, config.lr, teacher=teacher, temperature=config.temperature,
          alpha=config.alpha)
    twin = TorchModel(module, shape, input_name, tuple(o.name for o in state.proto.graph.output))
    return ModelState(export(twin), "fp32", twin)


class Distill(Pass):
    name = "distill"
    Config = DistillConfig

    def apply(self, state: ModelState, workspace: Workspace) -> tuple[ModelState, list[str]]:
        config: DistillConfig = self.config  # type: ignore[assignment]
        result = distill(state, workspace, config, self.name)
        assert result.torch is not None
        notes = [f"student width {config.width}, depth {config.depth}: {parameters(result.torch.module):,} "
                 f"parameters; T={config.temperature:g}, alpha={config.alpha:g}, {config.epochs} epochs"]
        return result, notes
