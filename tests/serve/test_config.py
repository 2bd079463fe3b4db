"""Triton's config.pbtxt subset and its YAML spelling, checked against the ONNX graph."""

from __future__ import annotations

import os
import time

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.serving import MLP_CONFIG, mlp
from tierml.serve.config import ConfigError, build_config
from tierml.serve.pbtxt import PbtxtError, parse


def test_pbtxt_parses_triton_syntax() -> None:
    raw = parse(MLP_CONFIG + """
        version_policy: { specific: { versions: [1, 3] } }
        dynamic_batching { priority_queue_policy { key: 1 value: { max_queue_size: 4 } } }  # comment
    """)
    assert raw["name"] == "mlp" and raw["max_batch_size"] == 8
    assert raw["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [64]}]
    assert raw["parameters"] == {"key": "intra_op_thread_count", "value": {"string_value": "1"}}
    assert raw["version_policy"] == {"specific": {"versions": [1, 3]}}


def test_pbtxt_yaml_equivalence() -> None:
    text = """
        name: "mlp"
        max_batch_size: 8
        input [ { name: "x" data_type: TYPE_FP32 dims: [ 64 ] } ]
        output { name: "y" data_type: TYPE_FP32 dims: 10 }
        dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100
          priority_levels: 2 default_priority_level: 2
          default_queue_policy { max_queue_size: 16 default_timeout_microseconds: 5000 allow_timeout_override: true }
          priority_queue_policy { key: 1 value { max_queue_size: 4 } } }
        instance_group [ { count: 1 kind: KIND_CPU } ]
        version_policy: { latest: { num_versions: 2 } }
    """
    from_pbtxt = build_config(parse(text), "mlp", mlp(), "config.pbtxt")
    from_yaml = build_config(yaml.safe_load("""
        max_batch_size: 8
        input: [{name: x, data_type: FP32, dims: [64]}]
        output: [{name: y, data_type: TYPE_FP32, dims: [10]}]
        dynamic_batching:
          preferred_batch_size: [8, 4]
          max_queue_delay_microseconds: 100
          priority_levels: 2
          default_priority_level: 2
          default_queue_policy: {max_queue_size: 16, default_timeout_microseconds: 5000, allow_timeout_override: true}
          priority_queue_policy: {1: {max_queue_size: 4}}
        instance_group: [{count: 1, kind: KIND_CPU}]
        version_policy: {latest: {num_versions: 2}}
    """), "mlp", mlp(), "config.yaml")
    assert from_pbtxt == from_yaml
    batching = from_pbtxt.batching
    assert batching is not None and batching.preferred_batch_sizes == (4, 8)
    assert batching.policy(1).max_queue_size == 4 and batching.policy(2).max_queue_size == 16
    assert from_pbtxt.version_policy.select([1, 2, 3]) == [2, 3]


@pytest.mark.parametrize(("block", "chosen"), [
    (None, [3]), ({"latest": {"num_versions": 2}}, [2, 3]), ({"all": {}}, [1, 2, 3]),
    ({"specific": {"versions": [1, 3, 7]}}, [1, 3]),
])
def test_version_policy_selects(block: dict | None, chosen: list[int]) -> None:
    raw = {} if block is None else {"version_policy": block}
    config = build_config(raw, "mlp", mlp(), "config.yaml")
    assert config.version_policy.select([3, 1, 2]) == chosen
    assert next(iter(config.to_triton()["version_policy"])) == next(iter(block or {"latest": {}}))


def test_auto_complete_from_onnx() -> None:
    config = build_config({}, "mlp", mlp(), "folder")
    assert [(t.name, t.datatype, t.dims) for t in config.inputs] == [("x", "FP32", (64,))]
    assert config.max_batch_size > 0 and config.batching is not None
    assert config.instance_count * config.threads() <= (os.cpu_count() or 1)


@pytest.mark.parametrize(("raw", "needle"), [
    ({"optimization": {}}, "optimization not supported"),
    ({"name": "other"}, "must equal the model's folder name"),
    ({"platform": "tensorrt_plan"}, "onnxruntime"),
    ({"input": [{"name": "z", "data_type": "TYPE_FP32", "dims": [64]}]}, "'z' is not in the ONNX graph"),
    ({"input": [{"name": "x", "data_type": "TYPE_INT32", "dims": [64]}]}, "TYPE_INT32 in the config but TYPE_FP32"),
    ({"input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [63]}]}, "do not match the ONNX graph's [64]"),
    ({"max_batch_size": -1}, "must be >= 0"),
    ({"dynamic_batching": {"preferred_batch_size": [64]}, "max_batch_size": 8}, "must not exceed"),
    ({"dynamic_batching": {"default_queue_policy": {"timeout_action": "DELAY"}}}, "REJECT"),
    ({"instance_group": [{"count": 64}], "parameters": {"intra_op_thread_count": 4}}, "oversubscribes"),
    ({"instance_group": [{"kind": "KIND_GPU"}]}, "KIND_CPU"),
    ({"version_policy": {"newest": {}}}, "unknown"),
])
def test_config_errors_teach(raw: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=r"config\.pbtxt") as caught:
        build_config(raw, "mlp", mlp(), "config.pbtxt")
    assert needle in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='{}[]:,;<>#"\'\\ \nabc_019.-+eE', max_size=60))
def test_pbtxt_parser_fails_only_with_its_own_error(text: str) -> None:
    try:
        result = parse(text)
    except PbtxtError:
        return
    assert isinstance(result, dict)


def test_thread_budget_instances_times_threads_fit_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each instance is one session; the threads it starts (its batcher thread, which runs the session, plus
    ORT's intra-op pool) add up to instances x intra-op threads, never more than the cores."""
    from tierml.serve.executor import builtin_executor
    from tierml.serve.stats import ModelStats

    def threads_now() -> int:
        return len(os.listdir("/proc/self/task"))

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    for group, threads, each in [({"count": 1}, None, 4), ({"count": 2}, None, 2), ({"count": 4}, None, 1),
                                 ({"count": 1}, 2, 2), ({"count": 2}, 2, 2)]:
        raw = {"instance_group": [group]} | ({"parameters": {"intra_op_thread_count": threads}} if threads else {})
        config = build_config(raw, "mlp", mlp(), "config.yaml")
        assert config.threads() == each and config.to_triton()["parameters"]["intra_op_thread_count"] == {
            "string_value": str(each)}
        before = threads_now()
        executor = builtin_executor(config, mlp().SerializeToString(), ModelStats("mlp", 1), 503)
        started = threads_now() - before
        executor.close()
        assert started == group["count"] * each <= 4, (raw, started)
        deadline = time.monotonic() + 5  # a joined thread leaves /proc a moment after Python sees it finish
        while threads_now() != before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert threads_now() == before, "closing the executor stops its threads"
    with pytest.raises(ConfigError, match=r"5 instance\(s\) x 1 intra-op thread\(s\) = 5 threads on 4 core\(s\) "
                       "oversubscribes the CPU; lower instance_group count to at most 4"):
        build_config({"instance_group": [{"count": 5}]}, "mlp", mlp(), "config.pbtxt")
    with pytest.raises(ConfigError, match=r"2 instance\(s\) x 3 intra-op thread\(s\) = 6 threads"):
        build_config({"instance_group": [{"count": 2}], "parameters": {"intra_op_thread_count": 3}}, "mlp", mlp(),
                     "config.pbtxt")
