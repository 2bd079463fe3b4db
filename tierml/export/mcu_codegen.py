"""C code generation: one model.c / model.h pair, no interpreter, no allocation.

model.c holds the kernels the model uses (from `mcu_c/`), its constants (`const`, so they stay in
flash), one static arena laid out by the memory plan, and `model_invoke`, a straight-line list of
kernel calls. Cortex-M4/M7 builds pick the DSP kernels at compile time (`__ARM_FEATURE_DSP`);
define TML_PLAIN_C to force the portable ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from tierml.export.mcu_plan import MemoryPlan
from tierml.export.mcu_quant import QLayer, QuantizedGraph

_KERNEL_FILES = {"conv": ["dot.c", "conv.c"], "fully_connected": ["dot.c"], "depthwise": ["depthwise.c"],
                 "add": ["add.c"], "max_pool": ["pool.c"], "avg_pool": ["pool.c"], "softmax": ["softmax.c"],
                 "concat": ["concat.c"], "reshape": []}


@dataclass
class CSource:
    """The generated files and the byte counts of what they put in flash."""

    model_c: str
    model_h: str
    const_bytes: int  # weights, biases, multipliers, shifts and parameter blocks


def kernel_source(name: str) -> str:
    return resources.files("tierml.export").joinpath("mcu_c", name).read_text()


def _array(ctype: str, name: str, values: np.ndarray) -> str:
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(flat[i:i + 24]) for i in range(0, len(flat), 24)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(flat)}] = {{\n    {body}\n}};\n"


class _Emitter:
    def __init__(self, q: QuantizedGraph, plan: MemoryPlan) -> None:
        self.q, self.plan = q, plan
        self.consts: list[str] = []
        self.calls: list[str] = []
        self.const_bytes = 0

    def const(self, ctype: str, name: str, values: np.ndarray) -> str:
        size = {"int8_t": 1, "int32_t": 4, "int": 4}[ctype]
        self.const_bytes += size * int(np.asarray(values).size)
        self.consts.append(_array(ctype, name, values))
        return name

    def struct(self, ctype: str, name: str, fields: list[object], size: int) -> str:
        self.const_bytes += size
        self.consts.append(f"static const {ctype} {name} = {{{', '.join(map(str, fields))}}};\n")
        return name

    def at(self, tensor: str) -> str:
        return f"arena + {self.plan.offsets[tensor]}"

    def scratch(self, i: int, name: str) -> str:
        offset = self.plan.layers[i].scratch.get(name)
        return "NULL" if offset is None else f"arena + {offset}"

    def rows(self, i: int, q: QLayer) -> list[object]:
        assert q.weight is not None and q.multiplier is not None and q.shift is not None
        w = self.const("int8_t", f"w{i}", q.weight)
        b = self.const("int32_t", f"b{i}", q.folded_bias())
        m = self.const("int32_t", f"m{i}", q.multiplier)
        s = self.const("int8_t", f"s{i}", q.shift)
        rows = q.weight.shape[0]
        depth = q.weight.size // rows
        return [depth, rows, w, b, m, s, q.output.zero_point, q.act_min, q.act_max]

    def layer(self, i: int, q: QLayer) -> None:
        layer = q.layer
        shapes = self.q.graph.shapes
        src = [self.at(x) for x in layer.inputs]
        dst = self.at(layer.output)
        comment = f"    /* {layer.node}: {layer.op}{'' if layer.activation == 'none' else ' + ' + layer.activation}"
        comment += f"{', in place' if self.plan.layers[i].in_place else ''} -> {list(shapes[layer.output])} */"
        call = getattr(self, f"_{layer.op}")(i, q, src, dst)
        if call:
            self.calls.append(comment)
            self.calls.append(f"    {call};")

    def _window(self, q: QLayer) -> list[object]:
        w = q.layer.window
        assert w is not None
        return [*w.kernel, *w.stride]

    def _conv(self, i: int, q: QLayer, src: list[str], dst: str) -> str:
        layer = q.layer
        assert layer.window is not None
        ins, out = self.q.graph.shapes[layer.inputs[0]], self.q.graph.shapes[layer.output]
        w = layer.window
        fields = ["{" + ", ".join(map(str, self.rows(i, q))) + "}", ins[1], ins[2], ins[3], out[1], out[2],
                  *w.kernel, *w.stride, *w.dilation, w.pads[0], w.pads[1], q.inputs[0].zero_point]
        p = self.struct("tml_conv_params", f"p{i}", fields, 4 * 24)
        col = self.scratch(i, "col")
        col = col if col == "NULL" else f"TML_COL({col})"
        return f"tml_conv(&{p}, {src[0]}, {dst}, {col}, {self.scratch(i, 'tmp')})"

    def _depthwise(self, i: int, q: QLayer, src: list[str], dst: str) -> str:
        layer = q.layer
        assert layer.window is not None and q.weight is not None and q.multiplier is not None and q.shift is not None
        ins, out = self.q.graph.shapes[layer.inputs[0]], self.q.graph.shapes[layer.output]
        w = layer.window
        weights = self.const("int8_t", f"w{i}", q.weight)
        bias = self.const("int32_t", f"b{i}", q.folded_bias())
        mult = self.const("int32_t", f"m{i}", q.multiplier)
        shift = self.const("int8_t", f"s{i}", q.shift)
        fields = [ins[1], ins[2], ins[3], out[1], out[2], out[3], out[3] // ins[3], *w.kernel, *w.stride,
                  *w.dilation, w.pads[0], w.pads[1], q.inputs[0].zero_point, q.output.zero_point, q.act_min,
                  q.act_max, weights, bias, mult, shift]
        p = self.struct("tml_depthwise_params", f"p{i}", fields, 4 * 25)
        return f"tml_depthwise(&{p}, {src[0]}, {dst}, {self.scratch(i, 'tmp')})"

    def _fully_connected(self, i: int, q: QLayer, src: list[str], dst: str) -> str:
        p = self.struct("tml_rows", f"p{i}", self.rows(i, q), 4 * 9)
        return f"tml_dot_rows(&{p}, {src[0]}, {dst})"

    def _add(self, i: int, q: QLayer, src: list[str], dst: str) -> str:
        e = q.extra
        fields = [self.q.graph.size(q.layer.output), e["in1_offset"], e["in2_offset"], e["left_shift"],
                  e["in1_multiplier"], e["in2_multiplier"], e["out_multiplier"], e["in1_shift"], e["in2_shift"],
                  e["out_shift"], q.output.zero_point, q.act_min, q.act_max]
        p = self.struct("tml_add_params", f"p{i}", fields, 4 * len(fields))
        return f"tml_add(&{p}, {src[0]}, {src[1]}, {dst})"

    def _pool(self, i: int, q: QLayer, src: list[str], dst: str) -> str:
        layer = q.layer
        assert layer.window is not None
        ins, out = self.q.graph.shapes[layer.inputs[0]], self.q.graph.shapes[layer.output]
        w = layer.window
        fields = [ins[1], ins[2], ins[3], out[1], out[2], *w.kernel, *w.stride, w.pads[0], w.pads[1],
                  q.act_min, q.act_max]
        p = self.struct("tml_pool_params", f"p{i}", fields, 4 * len(fields))
        return f"tml_pool(&{p}, {src[0]}, {dst}, {int(layer.op == 'avg_pool')})"

    _max_pool = _pool
    _avg_pool = _pool

    def _softmax(self, i: int, q: QLayer, src: list[str], dst: str) -> str:
        shape = self.q.graph.shapes[q.layer.output]
        e = q.extra
        fields = [math.prod(shape[:-1]), shape[-1], e["input_multiplier"], e["input_left_shift"], e["diff_min"]]
        p = self.struct("tml_softmax_params", f"p{i}", fields, 4 * len(fields))
        return f"tml_softmax(&{p}, {src[0]}, {dst})"

    def _reshape(self, i: int, q: QLayer, src: list[str], dst: str) -> str:
        return ""  # a view: the plan gives it its input's bytes

    def _concat(self, i: int, q: QLayer, src: list[str], dst: str) -> str:
        layer = q.layer
        shapes = self.q.graph.shapes
        axis = layer.axis % len(shapes[layer.output])
        outer = math.prod(shapes[layer.output][:axis])
        inner = self.const("int", f"n{i}", np.array([math.prod(shapes[x][axis:]) for x in layer.inputs]))
        self.calls.append(f"    const int8_t *const in{i}[{len(src)}] = {{{', '.join(src)}}};")
        return f"tml_concat({outer}, {len(src)}, in{i}, {inner}, {dst})"


def generate(q: QuantizedGraph, plan: MemoryPlan, source: str = "") -> CSource:
    """model.c and model.h for the quantized graph laid out by `plan`."""
    g = q.graph
    emit = _Emitter(q, plan)
    for i, layer in enumerate(q.layers):
        emit.layer(i, layer)
    files: list[str] = []
    for layer in q.layers:
        files += [f for f in _KERNEL_FILES[layer.op] if f not in files]
    kernels = "\n".join(kernel_source(f) for f in files)
    words = -(-plan.arena_bytes // 4)
    model_c = "\n".join([
        f"/* Generated by `tierml export --target mcu`{' from ' + source if source else ''}. Do not edit. */",
        '#include "model.h"',
        kernel_source("common.h"),
        kernels,
        "#if TML_DSP\n#define TML_COL(p) (p)\n#else\n#define TML_COL(p) NULL\n#endif\n",
        *emit.consts,
        f"/* One arena for every activation and scratch buffer ({plan.arena_bytes} bytes), word-aligned. */",
        f"static int32_t tml_arena[{max(words, 1)}];\n",
        "int model_invoke(const int8_t *input, int8_t *output)",
        "{",
        "    int8_t *const arena = (int8_t *)tml_arena;",
        f"    memcpy(arena + {plan.offsets[g.input]}, input, MODEL_INPUT_SIZE);",
        *emit.calls,
        f"    memcpy(output, arena + {plan.offsets[g.output]}, MODEL_OUTPUT_SIZE);",
        "    return 0;",
        "}",
        "",
    ])
    return CSource(model_c, _header(q, plan, source), emit.const_bytes)


def _header(q: QuantizedGraph, plan: MemoryPlan, source: str) -> str:
    g = q.graph
    shape_in, shape_out = g.shapes[g.input], g.shapes[g.output]
    return f"""/* Generated by `tierml export --target mcu`{' from ' + source if source else ''}. Do not edit.
 *
 * int8 inference, bit-exact with TensorFlow Lite Micro. Tensors are channels-last (NHWC):
 * input {list(shape_in)}, output {list(shape_out)}. Quantize a real input x as
 * clamp(round(x / MODEL_INPUT_SCALE) + MODEL_INPUT_ZERO_POINT, -128, 127); an output q means
 * (q - MODEL_OUTPUT_ZERO_POINT) * MODEL_OUTPUT_SCALE.
 */
#ifndef TIERML_MODEL_H
#define TIERML_MODEL_H

#include <stdint.h>

#define MODEL_INPUT_SIZE {g.size(g.input)}
#define MODEL_OUTPUT_SIZE {g.size(g.output)}
#define MODEL_ARENA_SIZE {plan.arena_bytes}
#define MODEL_INPUT_SCALE {float(q.input.scale)!r}f
#define MODEL_INPUT_ZERO_POINT ({q.input.zero_point})
#define MODEL_OUTPUT_SCALE {float(q.output.scale)!r}f
#define MODEL_OUTPUT_ZERO_POINT ({q.output.zero_point})
#define MODEL_MACS {g.total_macs}

/* Run one inference: MODEL_INPUT_SIZE int8 values in, MODEL_OUTPUT_SIZE out. Returns 0. Not reentrant. */
int model_invoke(const int8_t *input, int8_t *output);

#endif
"""
