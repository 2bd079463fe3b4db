"""Split computing against the measured optimum: regret, speed-ups, a replayed bandwidth trace, a server outage.

Device and server are separate processes on separate cores: the server is `tierml serve` (1 ORT
thread, pinned to core 1) hosting the tails; the device is this process (1 ORT thread, pinned to
core 0) slowed by a deterministic factor (it waits (F - 1) x each run's time). Links go through
tierml's link proxy (token bucket + one-way delay per direction) at the DADS uplinks.

For every (model, link):
- tierml: the runtime (EWMA estimates, bucket table, hysteresis) after a warm-up; its median latency.
- oracle: the measured median of every valid cut x encoding (every downset, or every prefix plus
  the min-cut answers when there are too many), skipping only cuts whose lower bound
  (0.9 x head time + RTT + (request - burst) / uplink + (response - burst) / downlink) already
  exceeds the best measured latency.
- baselines measured the same way: device-only, cloud-only, and a Neurosurgeon-style chain scan
  (the prefix with the best per-node additive prediction, fp32).

    flock /work/bench.lock python benchmarks/split_regret.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from common import print_table, write_results

from tests.support.pretrained import MODELS, fetch
from tierml.hardware.link import BackgroundLinkProxy, Direction
from tierml.hybrid import encoding as enc
from tierml.hybrid.bundle import Bundle, tail_name, write_bundle, write_server_model
from tierml.hybrid.cost import CutProfile, LinkState, measure_cut
from tierml.hybrid.planner import Side, node_times, plan_split
from tierml.hybrid.runtime import SplitRuntime
from tierml.model import mincut
from tierml.model.load import serialize
from tierml.model.partition import Cut, PartitionGraph
from tierml.model.shapes import dummy_inputs, parse_input_shapes
from tierml.serve.client import InferenceClient

SHAPES = {"yolov8n": "images=1x3x320x320", "ppocr-rec": "x=1x3x48x320", "ppocr-cls": "x=1x3x48x192"}
LINKS = [("CAT1", 0.13, 50.0), ("3G", 1.1, 40.0), ("4G", 5.85, 30.0), ("Wi-Fi", 18.88, 10.0)]  # up Mbit/s, one-way ms
DOWN_RATIO = 4.0
ENCODINGS = ["fp32", "fp32+lz4", "fp16+lz4", "int8+lz4"]  # --encodings; lossy ones: see split_encodings.py
BURST = Direction().burst_bytes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(repo: Path, port: int) -> Iterator[subprocess.Popen]:
    """`tierml serve` on core 1, explicit model control (tails load as the oracle needs them)."""
    cmd = ["taskset", "-c", "1", sys.executable, "-m", "tierml.cli.app", "serve", str(repo), "--port", str(port),
           "--model-control-mode", "explicit", "--load-model", "*", "--max-body-mb", "256"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_live(port, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_live(port: int, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        with contextlib.suppress(OSError), InferenceClient(f"http://127.0.0.1:{port}", timeout_s=2) as c:
            if c.live():
                return
        time.sleep(0.2)
    raise RuntimeError("server did not come up")


def chain_scan(graph: PartitionGraph, device_ms: list[float], server_ms: list[float], link: LinkState) -> Cut:
    """Neurosurgeon: the prefix of the execution order with the best per-layer additive prediction (fp32)."""
    tensor_ms = {t: link.serial_ms(graph.tensors[t].nbytes) for t in graph.consumers}
    out_ms = {o: link.serial_ms(0, graph.tensors[o].nbytes) for o in graph.outputs}

    def cost(c: Cut) -> float:
        split = mincut.split_cost(graph, c, device_ms, server_ms, tensor_ms, out_ms)
        return split.total_ms + (link.rtt_ms if c.tensors else 0.0)

    return min(graph.prefixes(), key=cost)


def measure(runtime: SplitRuntime, feeds: dict, cut: int, encoding: str, reps: int) -> float:
    """Median of `reps` runs after a warm-up (connection, server session); one cold run when reps is 1."""
    if reps > 1:
        runtime.run_cut(feeds, cut, encoding)
    return float(np.median([runtime.run_cut(feeds, cut, encoding).latency_ms for _ in range(reps)]))


def lower_bound(profile: CutProfile, encoding: str, link: LinkState) -> float:
    """No run of this option over the link can be faster (up to timing noise on the head)."""
    wire = profile.wire.get(encoding)
    if wire is None:
        return 0.9 * profile.head_ms
    return 0.9 * profile.head_ms + link.time_ms(max(0, wire.nbytes - BURST), max(0, profile.response_bytes - BURST))


def reps_for(profile: CutProfile, encoding: str, link: LinkState, reps: int) -> int:
    """Options that take seconds per run over this link are run once: they are far from the optimum anyway."""
    return 1 if lower_bound(profile, encoding, link) > 2000 else reps


def link_directions(mbps: float, one_way_ms: float) -> tuple[Direction, Direction]:
    return Direction(mbps, one_way_ms), Direction(mbps * DOWN_RATIO, one_way_ms)


class Oracle:
    """Every cut x encoding measured over the link, in lower-bound order, until no unmeasured one can win."""

    def __init__(self, bundle: Bundle, graph: PartitionGraph, profiles: list[CutProfile], client: InferenceClient
                 ) -> None:
        self.bundle, self.graph, self.profiles, self.client = bundle, graph, profiles, client
        self.loaded: set[str] = set()

    def ensure_tail(self, index: int, precision: str) -> None:
        """Write the head (device side) and the tail (server side) of a cut, and load the tail."""
        name = tail_name(self.bundle.model, index, precision)
        if name in self.loaded:
            return
        head_path = self.bundle.device_dir / f"head_{index}.onnx"
        head = self.graph.head_model(self.profiles[index].cut)
        if head is not None and not head_path.exists():
            head_path.write_bytes(serialize(head))
        tail = self.graph.tail_model(self.profiles[index].cut)
        assert tail is not None
        write_server_model(self.bundle.root / "server", name, enc.decoding_tail(tail, precision), 1)
        self.client.load_model(name)
        self.loaded.add(name)

    def run(self, runtime: SplitRuntime, feeds: dict, link: LinkState, reps: int
            ) -> tuple[dict[tuple[int, str], float], int]:
        options = sorted((lower_bound(p, e, link), i, e) for i, p in enumerate(self.profiles)
                         for e in (["none"] if p.local else ENCODINGS))
        medians: dict[tuple[int, str], float] = {}
        for bound, i, e in options:
            if bound > min(medians.values(), default=math.inf):
                break
            if not self.profiles[i].local:
                self.ensure_tail(i, enc.Encoding.parse(e).precision)
            medians[(i, e)] = measure(runtime, feeds, i, e, reps_for(self.profiles[i], e, link, reps))
        return medians, len(medians)


def settle(runtime: SplitRuntime, feeds: dict, options: list[tuple[int, str]], reps: int
           ) -> dict[tuple[int, str], float]:
    """Re-measure a few options interleaved (so drift hits them alike): the min of many noisy medians is biased low."""
    samples: dict[tuple[int, str], list[float]] = {o: [] for o in options}
    for _ in range(reps):
        for o in options:
            samples[o].append(runtime.run_cut(feeds, o[0], o[1]).latency_ms)
    return {o: float(np.median(v)) for o, v in samples.items()}


def _label(profiles: list[CutProfile], option: tuple[int, str]) -> str:
    return f"{profiles[option[0]].cut.key()[:60]}|{option[1]}"


def run_model(key: str, factor: float, reps: int, scratch: Path, quick: bool) -> dict:
    model = onnx.load(fetch(key))
    shapes = parse_input_shapes([SHAPES[key]])
    mid = LinkState(LINKS[2][1], LINKS[2][1] * DOWN_RATIO, 2 * LINKS[2][2])
    plan = plan_split(model, shapes, Side("host", factor), Side("host"), mid, ENCODINGS)
    graph = plan.graph
    feeds = dummy_inputs(graph.inputs)
    cuts, exhaustive = graph.cuts(limit=600 if not quick else 100)
    known = {p.cut.key(): p for p in plan.profiles}
    device_ms = node_times(graph, Side("host", factor), feeds)
    server_ms = node_times(graph, Side("host"), feeds)
    states = {name: LinkState(mbps, mbps * DOWN_RATIO, 2 * ow) for name, mbps, ow in LINKS}
    chains = {name: chain_scan(graph, device_ms, server_ms, s) for name, s in states.items()}
    extra = [c for c in [*cuts, *chains.values()] if c.key() not in known]
    if quick:
        extra = extra[:: max(1, len(extra) // 40)] + [c for c in chains.values() if c.key() not in known]
    started = time.perf_counter()
    profiles = list(plan.profiles)
    for c in {c.key(): c for c in extra}.values():
        profiles.append(measure_cut(graph, c, feeds, [enc.Encoding.parse(e) for e in ENCODINGS], factor))
    profile_s = time.perf_counter() - started
    index = {p.cut.key(): i for i, p in enumerate(profiles)}
    root = scratch / key
    bundle = write_bundle(root, key, graph, plan.profiles, plan.table, ENCODINGS)
    bundle.profiles = profiles  # the oracle and baselines index every profiled cut
    local = next(i for i, p in enumerate(profiles) if p.local)
    cloud = next(i for i, p in enumerate(profiles) if not p.cut.head)
    port = free_port()
    rows = []
    with server_process(root / "server", port) as _, InferenceClient(f"http://127.0.0.1:{port}") as control:
        oracle = Oracle(bundle, graph, profiles, control)
        for name, mbps, one_way in LINKS:
            state = states[name]
            up, down = link_directions(mbps, one_way)
            with BackgroundLinkProxy(("127.0.0.1", port), up, down) as proxy:
                url = f"http://127.0.0.1:{proxy.port}"
                with SplitRuntime(bundle, url, device_factor=factor, probe_every_s=0.5, initial_mbps=mbps) as runtime:
                    for _ in range(15):
                        runtime.infer(feeds)
                    results = [runtime.infer(feeds) for _ in range(max(reps, 7))]
                    runtime_ms = float(np.median([r.latency_ms for r in results]))
                    picks = [(r.cut, r.encoding) for r in results]
                    choice = max(set(picks), key=picks.count)
                    oracle.ensure_tail(cloud, "fp32")
                    chain_i = index[chains[name].key()]
                    chain = (chain_i, "none" if profiles[chain_i].local else "fp32")
                    if not profiles[chain_i].local:
                        oracle.ensure_tail(chain_i, "fp32")
                    medians, measured = oracle.run(runtime, feeds, state, reps)
                    lossless = [e for e in ENCODINGS if enc.Encoding.parse(e).lossless]
                    baselines = [(local, "none"), *[(cloud, e) for e in lossless], chain]
                    for o in [choice, *baselines]:
                        if o not in medians:
                            medians[o] = measure(runtime, feeds, *o, reps_for(profiles[o[0]], o[1], state, reps))
                    near = min(medians.values()) * 3
                    top = sorted(medians, key=medians.__getitem__)[:3]
                    again = [o for o in dict.fromkeys([choice, *top, *baselines]) if medians[o] <= near]
                    final = {**medians, **settle(runtime, feeds, again, 2 * reps + 1)}
            best = min(final, key=final.__getitem__)
            row = {"model": key, "link": name, "up_mbps": mbps, "one_way_ms": one_way,
                   "tierml_ms": final[choice], "tierml_choice": _label(profiles, choice),
                   "runtime_median_ms": runtime_ms, "oracle_ms": final[best], "oracle_choice": _label(profiles, best),
                   "oracle_measured": measured, "device_only_ms": final[(local, "none")],
                   "cloud_only_ms": min(final[(cloud, e)] for e in lossless),
                   "chain_scan_ms": final[chain], "chain_scan_cut": chains[name].key(),
                   "regret": final[choice] / final[best]}
            rows.append(row)
            print(f"  {key} {name}: tierml {row['tierml_ms']:.1f} ms ({row['tierml_choice']}; runtime median "
                  f"{runtime_ms:.1f}) | oracle {row['oracle_ms']:.1f} ({row['oracle_choice']}, {measured} measured) | "
                  f"device {row['device_only_ms']:.1f} cloud {row['cloud_only_ms']:.1f} "
                  f"chain {row['chain_scan_ms']:.1f}",
                  flush=True)
    shutil.rmtree(root, ignore_errors=True)
    return {"model": key, "shape": SHAPES[key], "title": MODELS[key].title, "cuts_enumerated": len(cuts),
            "exhaustive": exhaustive, "cuts_profiled": len(profiles), "profile_seconds": profile_s, "rows": rows}


TRACE = [20.0] * 5 + [2.0] * 5 + [0.7] * 5 + [12.0] * 5 + [40.0] * 5 + [1.2] * 5  # uplink Mbit/s, one per second


def replay(bundle: Bundle, port: int, feeds: dict, trace: list[float], factor: float, one_way: float,
           fixed: tuple[int, str] | None, period_s: float) -> dict:
    """A stream: one frame every `period_s` while the uplink follows `trace`; latency counts from the frame's
    arrival, so a slow answer delays the frames behind it (as a camera feed would)."""
    up, down = link_directions(trace[0], one_way)
    latencies: list[float] = []
    picks: list[str] = []
    stop = threading.Event()
    with BackgroundLinkProxy(("127.0.0.1", port), up, down) as proxy, \
            SplitRuntime(bundle, f"http://127.0.0.1:{proxy.port}", device_factor=factor, probe_every_s=0.5,
                         initial_mbps=trace[0]) as runtime:

        def follow() -> None:
            for mbps in trace:
                proxy.set_rate(mbps, mbps * DOWN_RATIO)
                if stop.wait(1.0):
                    return

        shaper = threading.Thread(target=follow, daemon=True)
        start = time.monotonic()
        shaper.start()
        for frame in range(int(len(trace) / period_s)):
            arrival = start + frame * period_s
            if time.monotonic() > start + len(trace):
                break
            time.sleep(max(0.0, arrival - time.monotonic()))
            result = runtime.infer(feeds) if fixed is None else runtime.run_cut(feeds, *fixed)
            latencies.append((time.monotonic() - arrival) * 1e3)
            picks.append(f"{result.cut}|{result.encoding}")
        stop.set()
        shaper.join()
        switches = runtime.policy.switches
        estimates = list(runtime.estimate.history)
    return {"latencies": latencies, "picks": picks, "switches": switches, "estimates": estimates,
            "without_hysteresis": switches_without_hysteresis(bundle, estimates)}


def switches_without_hysteresis(bundle: Bundle, estimates: list[float]) -> int:
    """How often the table's choice would change on the same estimates with no margin and no dwell."""
    table = bundle.table
    choices = [(table.choices[table.bucket(m)].cut, table.choices[table.bucket(m)].encoding) for m in estimates]
    return sum(a != b for a, b in itertools.pairwise(choices))


def run_dynamics(key: str, factor: float, period_s: float, scratch: Path) -> dict:
    """Trace replay (adaptive vs every static choice in the table) and a server outage mid-stream."""
    model = onnx.load(fetch(key))
    link = LinkState(5.85, 5.85 * DOWN_RATIO, 40.0)
    plan = plan_split(model, parse_input_shapes([SHAPES[key]]), Side("host", factor), Side("host"), link, ENCODINGS)
    feeds = dummy_inputs(plan.graph.inputs)
    root = scratch / f"{key}-dynamics"
    bundle = write_bundle(root, key, plan.graph, plan.profiles, plan.table, ENCODINGS, all_cuts=True)
    local = next(i for i, p in enumerate(plan.profiles) if p.local)
    slo_ms = 0.9 * plan.profiles[local].head_ms  # the device alone misses it: only a good link meets it
    trace = TRACE
    statics = list(dict.fromkeys([(c.cut, "none" if plan.profiles[c.cut].local else c.encoding)
                                  for c in plan.table.choices]))
    cloud = next(i for i, p in enumerate(plan.profiles) if not p.cut.head)
    statics += [o for o in [(local, "none"), (cloud, "fp32")] if o not in statics]
    port = free_port()
    with server_process(root / "server", port):
        adaptive = replay(bundle, port, feeds, trace, factor, 20.0, None, period_s)
        static = {_label(plan.profiles, o): replay(bundle, port, feeds, trace, factor, 20.0, o, period_s)
                  for o in statics}
    miss = {name: float(np.mean(np.array(r["latencies"]) > slo_ms)) for name, r in static.items()}
    best_static = min(miss, key=miss.__getitem__)
    adaptive_miss = float(np.mean(np.array(adaptive["latencies"]) > slo_ms))
    outage = run_outage(bundle, root, feeds, factor)
    shutil.rmtree(root, ignore_errors=True)
    result = {"model": key, "trace_mbps": trace, "period_s": period_s, "slo_ms": slo_ms,
              "adaptive_miss_rate": adaptive_miss,
              "adaptive_requests": len(adaptive["latencies"]), "adaptive_switches": adaptive["switches"],
              "switches_without_hysteresis": adaptive["without_hysteresis"],
              "adaptive_estimates_mbps": adaptive["estimates"], "static_miss_rates": miss,
              "best_static": best_static, "best_static_miss_rate": miss[best_static], "outage": outage}
    print(f"  trace: SLO {slo_ms:.0f} ms: adaptive misses {adaptive_miss:.1%} ({adaptive['switches']} switches; "
          f"{adaptive['without_hysteresis']} without hysteresis on the same estimates); best static {best_static} "
          f"{miss[best_static]:.1%}; all static {miss}", flush=True)
    print(f"  outage: {outage}", flush=True)
    return result


def run_outage(bundle: Bundle, root: Path, feeds: dict, factor: float, requests: int = 90) -> dict:
    """Stop the server after a third of the requests, start it again after two thirds: count what happens."""
    port = free_port()
    cmd = ["taskset", "-c", "1", sys.executable, "-m", "tierml.cli.app", "serve", str(root / "server"), "--port",
           str(port)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_live(port, server)
    up, down = link_directions(18.88, 10.0)
    rows, lost, restarted_at = [], 0, None
    try:
        with BackgroundLinkProxy(("127.0.0.1", port), up, down) as proxy, \
                SplitRuntime(bundle, f"http://127.0.0.1:{proxy.port}", device_factor=factor, probe_every_s=0.25,
                             initial_mbps=18.88) as runtime:
            for i in range(requests):
                if i == requests // 3:
                    server.terminate()
                    server.wait(timeout=30)
                if i == 2 * requests // 3:
                    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    wait_live(port, server)
                    restarted_at = time.monotonic()
                try:
                    r = runtime.infer(feeds)
                    rows.append((i, r.degraded, time.monotonic(), r.up_bytes > 0))
                except Exception:  # a lost request is what this test counts
                    lost += 1
    finally:
        server.terminate()
        server.wait(timeout=30)
    after = [(i, t) for i, degraded, t, remote in rows if i >= 2 * requests // 3 and not degraded and remote]
    return {"requests": requests, "answered": len(rows), "lost": lost,
            "degraded": sum(1 for _, d, _, _ in rows if d),
            "degraded_while_down": sum(1 for i, d, _, _ in rows if requests // 3 <= i < 2 * requests // 3 and d),
            "remote_after_restart": len(after),
            "recovery_s": (after[0][1] - restarted_at) if after and restarted_at else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(SHAPES))
    parser.add_argument("--factor", type=float, default=20.0, help="device slow-down (x this host, 1 thread)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a subsample of cuts (smoke test)")
    parser.add_argument("--part", choices=["regret", "dynamics", "all"], default="all")
    parser.add_argument("--trace-model", default="ppocr-rec")
    parser.add_argument("--encodings", default=",".join(ENCODINGS), help="comma-separated cut-tensor encodings")
    parser.add_argument("--period", type=float, default=0.5, help="trace replay: seconds between frames")
    args = parser.parse_args()
    ENCODINGS[:] = args.encodings.split(",")
    subprocess.run(["taskset", "-p", "-c", "0", str(os.getpid())], check=True, capture_output=True)
    if args.part in ("regret", "all"):
        with tempfile.TemporaryDirectory(prefix="tierml-split-") as tmp:
            results: list[dict] = []
            for key in args.models:
                results.append(run_model(key, args.factor, args.reps, Path(tmp), args.quick))
                report(results, args)  # after every model: a late failure keeps what was measured
    if args.part in ("dynamics", "all"):
        with tempfile.TemporaryDirectory(prefix="tierml-split-") as tmp:
            dynamics = run_dynamics(args.trace_model, args.factor, args.period, Path(tmp))
        write_results("split_dynamics", {"factor": args.factor, **dynamics})


def report(results: list[dict], args: argparse.Namespace) -> None:
    rows = [r for m in results for r in m["rows"]]
    regrets = np.array([r["regret"] for r in rows])
    summary = {
        "regret_median": float(np.median(regrets)), "regret_p95": float(np.percentile(regrets, 95)),
        "speedup_vs_device_only_median": float(np.median([r["device_only_ms"] / r["tierml_ms"] for r in rows])),
        "speedup_vs_cloud_only_median": float(np.median([r["cloud_only_ms"] / r["tierml_ms"] for r in rows])),
        "speedup_vs_chain_scan_median": float(np.median([r["chain_scan_ms"] / r["tierml_ms"] for r in rows])),
    }
    print_table(f"split regret (device = this host x {args.factor:g}, 1 thread; server 1 thread)",
                ["model", "link", "tierml ms", "oracle ms", "regret", "device-only", "cloud-only", "chain scan",
                 "tierml choice"],
                [[r["model"], r["link"], r["tierml_ms"], r["oracle_ms"], r["regret"], r["device_only_ms"],
                  r["cloud_only_ms"], r["chain_scan_ms"], r["tierml_choice"][:50]] for r in rows])
    print(summary, flush=True)
    write_results("split_regret" + ("_quick" if args.quick else ""),
                  {"factor": args.factor, "links": LINKS, "encodings": ENCODINGS, "summary": summary,
                   "models": results})


if __name__ == "__main__":
    main()
