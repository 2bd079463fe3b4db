"""Peak activation memory equals a brute-force simulation of an executor, on random DAGs and real models."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tierml.model.liveness import peak_memory
from tierml.model.load import load_onnx
from tierml.model.profile import analyze


def simulate(steps, sizes, graph_inputs, graph_outputs) -> int:
    """Run the steps like an executor with reference counts and record the largest live total.

    Independent of the interval sweep under test: allocate each node's outputs, measure with the
    node's inputs still held, then release every tensor whose last reader has run.
    """
    remaining: dict[str, int] = {}
    for inputs, _ in steps:
        for name in set(inputs):
            remaining[name] = remaining.get(name, 0) + 1
    pinned = set(graph_outputs)
    live = {t for t in graph_inputs if t in sizes}
    peak = sum(sizes[t] for t in live) if not steps else 0
    for inputs, outputs in steps:
        live |= {t for t in outputs if t in sizes}
        peak = max(peak, sum(sizes[t] for t in live))
        for name in set(inputs):
            remaining[name] -= 1
        for name in list(live):
            if remaining.get(name, 0) == 0 and name not in pinned:
                live.discard(name)
    return peak


@st.composite
def random_dags(draw):
    n_inputs = draw(st.integers(1, 3))
    n_nodes = draw(st.integers(0, 25))
    tensors = [f"in{i}" for i in range(n_inputs)]
    steps = []
    for index in range(n_nodes):
        k = draw(st.integers(1, min(3, len(tensors))))
        inputs = draw(st.lists(st.sampled_from(tensors), min_size=k, max_size=k))
        outputs = [f"t{index}_{j}" for j in range(draw(st.integers(1, 2)))]
        steps.append((inputs, outputs))
        tensors.extend(outputs)
    sizes = {t: draw(st.integers(0, 10_000)) for t in tensors}
    graph_outputs = draw(st.lists(st.sampled_from(tensors), max_size=3, unique=True))
    return steps, sizes, [f"in{i}" for i in range(n_inputs)], graph_outputs


@settings(max_examples=400, deadline=None)
@given(random_dags())
def test_peak_equals_brute_force_on_random_dags(dag):
    steps, sizes, inputs, outputs = dag
    result = peak_memory(steps, sizes, inputs, outputs)
    assert result.peak_bytes == simulate(steps, sizes, inputs, outputs)
    if steps:
        assert result.timeline[result.step] == result.peak_bytes
        assert max(result.timeline) == result.peak_bytes
        assert sum(sizes[t] for t in result.live) == result.peak_bytes


def test_peak_on_a_diamond_counts_both_branches():
    # x -> a -> c and x -> b -> c: while b runs, x (still needed by nobody), a and b are live.
    steps = [(["x"], ["a"]), (["x"], ["b"]), (["a", "b"], ["c"])]
    sizes = {"x": 100, "a": 10, "b": 20, "c": 5}
    result = peak_memory(steps, sizes, ["x"], ["c"])
    assert result.peak_bytes == 130  # x + a + b while the second branch runs
    assert result.step == 1


def test_profile_peak_on_the_digits_model_is_conv2_and_its_relu(digits_path):
    profile = analyze(load_onnx(digits_path), {"input": (4, 1, 8, 8)})
    assert profile.memory.peak_activation_bytes == 2 * 4 * 32 * 8 * 8 * 4  # two float [4,32,8,8] tensors
    assert profile.memory.peak_node == "node_relu_1"
