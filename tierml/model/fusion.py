"""Which nodes ONNX Runtime folds into a neighbour, so they cost no separate pass over memory.

ORT's CPU graph optimizer fuses a convolution with a following BatchNormalization and with a
constant bias Add (basic level), with a following activation (FusedConv, extended level) and, in
its NCHWc layout (ORT_ENABLE_ALL), with a residual Add; MatMul + constant Add becomes a Gemm. An
estimate that charged those nodes a full read and write of their tensors would double-count.
"""

from __future__ import annotations

from collections import defaultdict

from tierml.model.profile import ModelProfile, NodeProfile

ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid"})
_CONVS = frozenset({"Conv", "FusedConv"})


def runtime_fusions(profile: ModelProfile) -> dict[str, str]:
    """Map each absorbed node's name to the name of the node it is fused into."""
    nodes = [n for n in profile.nodes if not n.folded]
    consumers: dict[str, list[NodeProfile]] = defaultdict(list)
    for node in nodes:
        for name in dict.fromkeys(node.inputs):
            consumers[name].append(node)
    graph_outputs = {o.name for o in profile.outputs}
    fixed = {o for n in profile.nodes if n.folded for o in n.outputs}

    def sole_consumer(tensor: str) -> NodeProfile | None:
        users = consumers.get(tensor, [])
        return users[0] if len(users) == 1 and tensor not in graph_outputs else None

    fused: dict[str, str] = {}
    for head in nodes:
        if head.op_type in _CONVS:
            steps = ("BatchNormalization", "AddBias", "AddResidual", "Activation")
        elif head.op_type in ("MatMul", "Gemm"):
            steps = ("AddBias", "Activation")
        else:
            continue
        current = head
        for step in steps:
            nxt = sole_consumer(current.outputs[0]) if current.outputs else None
            if nxt is None or nxt.name in fused or not _matches(step, nxt, current.outputs[0], fixed):
                continue
            fused[nxt.name] = head.name
            current = nxt
    return fused


def _matches(step: str, node: NodeProfile, tensor: str, fixed: set[str]) -> bool:
    others = [i for i in node.inputs if i != tensor]
    if step == "BatchNormalization":
        return node.op_type == "BatchNormalization" and all(i in fixed for i in others)
    if step == "AddBias":
        return node.op_type == "Add" and len(others) == 1 and others[0] in fixed
    if step == "AddResidual":
        return node.op_type in ("Add", "Sum") and len(others) == 1 and others[0] not in fixed
    return node.op_type in ACTIVATIONS
