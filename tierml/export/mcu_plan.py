"""The static memory plan: every activation and scratch buffer at a fixed offset of one arena.

Offsets come from tensor lifetimes (greedy, largest first, lowest offset that does not overlap a
buffer alive at the same time — TFLM's GreedyMemoryPlanner idea), after two reductions TFLM does
not make: views (Reshape/Flatten) and in-place layers share their input's buffer. A layer runs in
place only when its input dies at that layer and the kernel's access order makes it safe:
depthwise (one output channel held in a temporary), unpadded pooling, Add, Softmax and unpadded
1x1 stride-1 convolutions (one output pixel held in a temporary).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tierml.export.mcu_graph import Graph, Layer

ALIGN = 4


@dataclass
class Buffer:
    """A region of the arena shared by tensors whose lifetimes chain (views, in-place outputs)."""

    size: int
    first: int  # step that writes it first (-1: the input copy before layer 0)
    last: int  # step that reads it last (len(layers): the output copy after the last layer)
    tensors: list[str] = field(default_factory=list)
    offset: int = 0


@dataclass
class LayerMemory:
    """Where one layer reads, writes and keeps its scratch."""

    in_place: bool = False
    scratch: dict[str, int] = field(default_factory=dict)  # name -> offset ("col", "tmp")


@dataclass
class MemoryPlan:
    """Offsets of every tensor and scratch buffer, and the arena size they need."""

    offsets: dict[str, int]
    layers: list[LayerMemory]
    arena_bytes: int
    buffers: list[Buffer]

    def naive_bytes(self, graph: Graph) -> int:
        """What one buffer per tensor (input and every layer output), all alive together, would take."""
        return sum(_aligned(graph.size(t)) for t in [graph.input, *(layer.output for layer in graph.layers)])


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def scratch_sizes(layer: Layer, graph: Graph, in_place: bool) -> dict[str, int]:
    """Per-layer scratch: the DSP conv's im2col patch, the in-place temporaries."""
    sizes: dict[str, int] = {}
    if layer.op == "conv":
        assert layer.weight is not None and layer.window is not None
        _, kh, kw, cin = layer.weight.shape
        if not (kh == kw == 1 and layer.window.unpadded):
            sizes["col"] = kh * kw * cin
        if in_place:
            sizes["tmp"] = layer.weight.shape[0]
    elif layer.op == "depthwise" and in_place:
        out = graph.shapes[layer.output]
        sizes["tmp"] = out[1] * out[2] * (4 if out[3] % 4 == 0 else 1)  # DSP kernels do four channels a pass
    return sizes


def _may_run_in_place(layer: Layer, graph: Graph) -> list[int]:
    """Indices of the inputs this layer's kernel may overwrite with its output."""
    window = layer.window
    if layer.op in ("add",):
        return [0, 1]
    if layer.op == "softmax":
        return [0]
    if layer.op in ("max_pool", "avg_pool") and window is not None and window.unpadded:
        return [0]
    if layer.op == "depthwise" and graph.shapes[layer.output][3] == graph.shapes[layer.inputs[0]][3]:
        return [0]
    if (layer.op == "conv" and window is not None and window.unpadded and window.kernel == (1, 1)
            and window.stride == (1, 1)):
        return [0]
    return []


def plan_memory(graph: Graph, in_place: bool = True) -> MemoryPlan:
    """Lifetimes, buffer sharing and greedy offsets for `graph`."""
    steps = len(graph.layers)
    last_use = {graph.input: -1, graph.output: steps}
    for i, layer in enumerate(graph.layers):
        for x in layer.inputs:
            last_use[x] = max(last_use.get(x, -1), i)
    buffer_of: dict[str, Buffer] = {}
    buffers: list[Buffer] = []

    def new_buffer(tensor: str, step: int) -> None:
        buf = Buffer(_aligned(graph.size(tensor)), step, max(step, last_use.get(tensor, step)), [tensor])
        buffers.append(buf)
        buffer_of[tensor] = buf

    def join(tensor: str, buf: Buffer) -> None:
        buf.size = max(buf.size, _aligned(graph.size(tensor)))
        buf.last = max(buf.last, last_use.get(tensor, buf.last))
        buf.tensors.append(tensor)
        buffer_of[tensor] = buf

    new_buffer(graph.input, -1)
    memory: list[LayerMemory] = []
    scratch: list[tuple[int, str, Buffer]] = []
    for i, layer in enumerate(graph.layers):
        info = LayerMemory()
        if layer.op == "reshape":
            join(layer.output, buffer_of[layer.inputs[0]])
        else:
            dying = [x for k, x in enumerate(layer.inputs) if k in _may_run_in_place(layer, graph)
                     and buffer_of[x].last == i] if in_place else []
            if dying:
                info.in_place = True
                join(layer.output, buffer_of[dying[0]])
            else:
                new_buffer(layer.output, i)
        for name, size in scratch_sizes(layer, graph, info.in_place).items():
            buf = Buffer(_aligned(size), i, i, [f"{layer.output}/{name}"])
            buffers.append(buf)
            scratch.append((i, name, buf))
        memory.append(info)
    arena = _place(buffers)
    for i, name, buf in scratch:
        memory[i].scratch[name] = buf.offset
    offsets = {t: buf.offset for t, buf in buffer_of.items()}
    return MemoryPlan(offsets, memory, arena, buffers)


def _place(buffers: list[Buffer]) -> int:
    """Greedy by size: each buffer at the lowest offset free during its whole lifetime. Returns the arena size."""
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first)):
        live = sorted((p for p in placed if p.first <= buf.last and buf.first <= p.last), key=lambda p: p.offset)
        offset = 0
        for other in live:
            if other.offset - offset >= buf.size:
                break
            offset = max(offset, other.offset + other.size)
        buf.offset = offset
        placed.append(buf)
    return max((b.offset + b.size for b in buffers), default=0)
