"""tierml serve vs raw ONNX Runtime vs PyTriton (real Triton 2.51) vs the kserve ModelServer, in one run.

Two models: a tiny MLP 64->32->10 (JSON bodies: the HTTP path is everything) and YOLOv8n at 320x320
(NudeNet's 320n from its PyPI wheel; binary bodies; compute-bound). Every server runs ONNX Runtime with
the same intra-op threads. Load: wrk (-t1, a Lua script posting the body) at concurrency 1, 8 and 32,
`--rounds` times in alternation, plus the asyncio open-loop client (tests/support/openloop.py) at a fixed
rate. Raw ORT is this process calling `session.run` on batches (rows per second: the limit).

Peers get their own virtual environments (PyTriton pins numpy<2; kserve pins protobuf<7), created on
first use under `--peers-dir` (default benchmarks/.cache/peers, or $TIERML_PEERS_DIR). Everything
after set-up runs inside a private network namespace (`unshare -n`, loopback only), because the kserve
ModelServer binds 0.0.0.0. Needs root (for unshare) and wrk (`apt-get install wrk`).

    python benchmarks/serve_vs_peers.py                   # both models, 3 rounds of 5 s, about 10 minutes
    python benchmarks/serve_vs_peers.py --models tiny --rounds 1 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from common import print_table, write_results

from tests.support.openloop import http_request, open_loop, summarize
from tests.support.pretrained import fetch
from tests.support.serve_models import mlp, write_model
from tierml.model.session import make_session

HERE = Path(__file__).resolve().parent
PEER_VENVS = {
    "pytriton": ["nvidia-pytriton==0.7.0", "onnxruntime", "numpy<2"],
    "kserve": ["kserve==0.21.0", "onnxruntime"],
}
PORTS = {"tierml": 18000, "pytriton": 18100, "kserve": 18200}


@dataclass
class Case:
    """One model as every server sees it."""

    key: str
    name: str
    path: Path
    input_name: str
    input_dims: tuple[int, ...]  # without the batch dim
    threads: int
    max_batch: int
    binary: bool  # binary request bodies (and binary outputs) instead of JSON
    open_loop_rate: float | None  # requests per second; None: half of raw ORT's batch-1 rate
    results: dict = field(default_factory=dict)


def cases(selected: list[str], cache: Path) -> list[Case]:
    out = []
    if "tiny" in selected:
        path = cache / "mlp.onnx"
        onnx.save(mlp(), str(path))
        out.append(Case("tiny", "mlp", path, "x", (64,), threads=1, max_batch=32, binary=False,
                        open_loop_rate=1000))
    if "compute" in selected:
        path = fetch("yolov8n")
        out.append(Case("compute", "yolov8n", path, "images", (3, 320, 320), threads=2, max_batch=8, binary=True,
                        open_loop_rate=None))
    return out


# ---------------------------------------------------------------- set-up (outside the namespace)

def ensure_venv(root: Path, name: str) -> Path:
    """The peer's interpreter, creating its venv on first use."""
    python = root / name / "bin" / "python"
    if not python.exists():
        print(f"creating the {name} venv in {root / name} (first run only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(root / name)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_VENVS[name]], check=True)
    return python


def bring_up_loopback() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


# ---------------------------------------------------------------- servers

def request_body(case: Case, rows: int = 1) -> tuple[bytes, dict[str, str], np.ndarray]:
    x = np.random.default_rng(0).random((rows, *case.input_dims), dtype=np.float32)
    if case.binary:
        header = json.dumps({"inputs": [{"name": case.input_name, "shape": list(x.shape), "datatype": "FP32",
                                         "parameters": {"binary_data_size": x.nbytes}}],
                             "parameters": {"binary_data_output": True}}).encode()
        return header + x.tobytes(), {"Content-Type": "application/octet-stream",
                                      "Inference-Header-Content-Length": str(len(header))}, x
    body = json.dumps({"inputs": [{"name": case.input_name, "shape": list(x.shape), "datatype": "FP32",
                                   "data": np.round(x, 4).ravel().tolist()}]}).encode()
    return body, {"Content-Type": "application/json"}, np.round(x, 4)


def tierml_repo(case: Case, root: Path) -> Path:
    write_model(root, case.name, onnx.load(str(case.path)), f"""
max_batch_size: {case.max_batch}
dynamic_batching {{ }}
instance_group [ {{ count: 1 kind: KIND_CPU }} ]
parameters {{ key: "intra_op_thread_count" value {{ string_value: "{case.threads}" }} }}
""")
    return root


def start_servers(case: Case, names: list[str], peers: dict[str, Path], scratch: Path) -> dict[str, subprocess.Popen]:
    dims = "x".join(map(str, case.input_dims))
    commands = {
        "tierml": ([sys.executable, "-m", "tierml.cli.app", "serve",
                    str(tierml_repo(case, scratch / f"repo-{case.key}")), "--port", str(PORTS["tierml"])], {}),
        "pytriton": ([str(peers.get("pytriton", "")), str(HERE / "peers" / "pytriton_server.py"), "--model",
                      str(case.path), "--name", case.name, "--port", str(PORTS["pytriton"]), "--threads",
                      str(case.threads), "--max-batch", str(case.max_batch), "--input-dims", dims],
                     {"LD_LIBRARY_PATH": libdir(peers.get("pytriton"))}),
        "kserve": ([str(peers.get("kserve", "")), str(HERE / "peers" / "kserve_server.py"), "--model",
                    str(case.path), "--name", case.name, "--port", str(PORTS["kserve"]), "--threads",
                    str(case.threads)], {}),
    }
    processes = {}
    for name in names:
        command, env = commands[name]
        log = open(scratch / f"{name}-{case.key}.log", "w")  # noqa: SIM115 - lives as long as the process
        processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env},
                                           start_new_session=True)
    for name in names:
        wait_ready(name, case, processes[name], scratch)
    return processes


def libdir(python: Path | None) -> str:
    """The peer interpreter's LIBDIR: Triton's Python stub must load that libpython, not the system's."""
    if python is None:
        return ""
    return subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
                          check=True, capture_output=True, text=True).stdout.strip()


def wait_ready(name: str, case: Case, process: subprocess.Popen, scratch: Path, timeout_s: float = 120) -> None:
    url = f"http://127.0.0.1:{PORTS[name]}/v2/models/{case.name}/ready"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited: {(scratch / f'{name}-{case.key}.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"{name} not ready after {timeout_s} s")


def stop_servers(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:  # Triton can take 30 s to stop; nothing here needs it gone gracefully
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def check_answers(case: Case, names: list[str]) -> None:
    """Every server returns what ONNX Runtime returns for the benchmark's request, before it is timed."""
    from tierml.serve.client import decode_response

    body, headers, x = request_body(case)
    expected = make_session(onnx.load(str(case.path)), case.threads).run(None, {case.input_name: x})[0]
    for name in names:
        request = urllib.request.Request(f"http://127.0.0.1:{PORTS[name]}/v2/models/{case.name}/infer", data=body,
                                         headers=headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            length = response.headers.get("Inference-Header-Content-Length")
            arrays = decode_response(response.read(), int(length) if length else None)[1]
        got = next(iter(arrays.values()))
        if not np.allclose(got, expected, rtol=1e-3, atol=1e-3):
            raise SystemExit(f"{name} answered differently from ONNX Runtime on {case.name}")


# ---------------------------------------------------------------- load

def cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait, total


def wait_for_quiet(idle_wanted: float = 0.9, window_s: float = 0.5, max_wait_s: float = 60.0) -> dict:
    """Wait until the machine is idle (a peer may still be working off a backlog, or another job may run):
    returns the idle share of the last window and how long it waited."""
    start = time.monotonic()
    while True:
        idle0, total0 = cpu_times()
        time.sleep(window_s)
        idle1, total1 = cpu_times()
        idle = (idle1 - idle0) / max(1, total1 - total0)
        if idle >= idle_wanted or time.monotonic() - start > max_wait_s:
            return {"idle_before": round(idle, 3), "waited_s": round(time.monotonic() - start, 2)}


WRK_SCRIPT = """
local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()
wrk.method = "POST"
{headers}
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(port: int, path: str, script: Path, connections: int, seconds: float) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    latency = {q: float(v) * _UNITS[u] for q, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50_ms": latency.get("50"), "p99_ms": latency.get("99"), "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": sum(map(int, errors.groups())) if errors else 0}


def raw_ort(case: Case, batches: list[int], seconds: float) -> dict[int, float]:
    """Rows per second of `session.run` on batches of each size, in this process (no HTTP, no queue)."""
    session = make_session(onnx.load(str(case.path)), case.threads)
    rates = {}
    for rows in batches:
        wait_for_quiet()
        x = np.random.default_rng(0).random((rows, *case.input_dims), dtype=np.float32)
        for _ in range(3):
            session.run(None, {case.input_name: x})
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            session.run(None, {case.input_name: x})
            runs += 1
        rates[rows] = runs * rows / (time.perf_counter() - start)
    return rates


def measure(case: Case, names: list[str], args: argparse.Namespace, scratch: Path) -> None:
    body, headers, _ = request_body(case)
    (scratch / "body.bin").write_bytes(body)
    script = scratch / f"{case.key}.lua"
    script.write_text(WRK_SCRIPT.format(body=scratch / "body.bin",
                                        headers="\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())))
    path = f"/v2/models/{case.name}/infer"
    ort_batches = sorted({1, *args.concurrency, *(b for b in (2, 4, 8) if b <= case.max_batch)})
    runs: dict[str, dict[int, list[dict]]] = {n: {c: [] for c in args.concurrency} for n in names}
    ort_runs: list[dict[int, float]] = []
    for round_index in range(args.rounds):
        ort_runs.append(raw_ort(case, ort_batches, min(args.seconds, 3.0)))
        for connections in args.concurrency:
            order = names if round_index % 2 == 0 else names[::-1]
            for name in order:
                quiet = wait_for_quiet()
                result = run_wrk(PORTS[name], path, script, connections, args.seconds) | quiet
                runs[name][connections].append(result)
                print(f"{case.key} round {round_index + 1} c={connections} {name}: {result}", flush=True)
    ort_rate = {rows: statistics.median(r[rows] for r in ort_runs) for rows in ort_batches}
    rate = case.open_loop_rate or 0.5 * ort_rate[1]
    request = http_request(path, body, headers)
    fixed = {}
    for name in names:
        wait_for_quiet()
        outcomes = asyncio.run(open_loop("127.0.0.1", PORTS[name], request, rate, args.open_seconds))
        fixed[name] = summarize(outcomes, args.open_seconds)
        print(f"{case.key} open loop {rate:.0f}/s {name}: {fixed[name]}", flush=True)
    case.results = {"model": case.name, "path": str(case.path.name), "threads": case.threads,
                    "max_batch": case.max_batch, "body": "binary" if case.binary else "json",
                    "raw_ort_rows_per_s": {str(k): v for k, v in ort_rate.items()},
                    "raw_ort_rounds": [{str(k): v for k, v in r.items()} for r in ort_runs],
                    "wrk": {n: {str(c): {"median": median_of(rs), "rounds": rs} for c, rs in by_c.items()}
                            for n, by_c in runs.items()},
                    "open_loop": {"rate_per_s": rate, "seconds": args.open_seconds, **fixed}}


def median_of(rounds: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in rounds if r[key] is not None)
            for key in ("rps", "p50_ms", "p99_ms")} | {"non_2xx": sum(r["non_2xx"] for r in rounds),
                                                       "socket_errors": sum(r["socket_errors"] for r in rounds)}


# ---------------------------------------------------------------- report

def ratios(case: Case, names: list[str], concurrency: list[int]) -> dict:
    wrk = case.results["wrk"]
    out: dict = {}
    peers = [n for n in names if n != "tierml"]
    for c in concurrency:
        ours = wrk["tierml"][str(c)]["median"]["rps"] if "tierml" in wrk else None
        best = max(peers, key=lambda n: wrk[n][str(c)]["median"]["rps"]) if peers else None
        entry = {"best_peer": best}
        if ours and best:
            entry["tierml_over_best_peer"] = ours / wrk[best][str(c)]["median"]["rps"]
        for n in peers:
            if ours:
                entry[f"tierml_over_{n}"] = ours / wrk[n][str(c)]["median"]["rps"]
        out[str(c)] = entry
    if "tierml" in wrk:
        saturated = max(wrk["tierml"][str(c)]["median"]["rps"] for c in concurrency)
        best_ort = max(case.results["raw_ort_rows_per_s"].values())
        out["tierml_saturated_over_raw_ort_best_batch"] = saturated / best_ort
    return out


def report(found: list[Case], names: list[str], concurrency: list[int]) -> None:
    for case in found:
        wrk = case.results["wrk"]
        header = ["server", *[f"c={c} req/s" for c in concurrency], *[f"c={c} p50/p99 ms" for c in concurrency]]
        rows = []
        for n in names:
            med = [wrk[n][str(c)]["median"] for c in concurrency]
            rows.append([n, *[m["rps"] for m in med], *[f"{m['p50_ms']:.2f} / {m['p99_ms']:.2f}" for m in med]])
        ort = case.results["raw_ort_rows_per_s"]
        rows.append(["raw ORT (rows/s at batch = c)", *[ort[str(c)] for c in concurrency], *[""] * len(concurrency)])
        print_table(f"{case.key}: {case.name}, {case.results['body']} bodies, {case.threads} ORT thread(s)", header,
                    rows)
        r = case.results["ratios"]
        print_table(f"{case.key}: ratios", ["concurrency", "best peer", "tierml / best peer"],
                    [[c, r[str(c)]["best_peer"], r[str(c)].get("tierml_over_best_peer", "")] for c in concurrency])
        print(f"tierml at saturation / raw ORT best batch: {r['tierml_saturated_over_raw_ort_best_batch']:.3f}")
        loop = case.results["open_loop"]
        print_table(f"{case.key}: open loop at {loop['rate_per_s']:.0f} req/s for {loop['seconds']:g} s",
                    ["server", "ok/s", "p50 ms", "p99 ms", "rejected", "failed"],
                    [[n, loop[n]["ok_per_s"], loop[n]["ok_p50_ms"], loop[n]["ok_p99_ms"], loop[n]["rejected"],
                      loop[n]["failed"]] for n in names])


# ---------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny", "compute"], choices=["tiny", "compute"])
    parser.add_argument("--servers", nargs="+", default=["tierml", "pytriton", "kserve"],
                        choices=["tierml", "pytriton", "kserve"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per run")
    parser.add_argument("--open-seconds", type=float, default=10.0, help="open-loop duration per server")
    parser.add_argument("--peers-dir", type=Path,
                        default=Path(os.environ.get("TIERML_PEERS_DIR", HERE / ".cache" / "peers")))
    parser.add_argument("--inside-namespace", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    if not args.inside_namespace:
        for name in args.servers:
            if name in PEER_VENVS:
                ensure_venv(args.peers_dir, name)
        with tempfile.TemporaryDirectory() as tmp:
            cases(args.models, Path(tmp))  # fetch the pretrained model while the network is there
        os.execvp("unshare", ["unshare", "-n", "--", sys.executable, *sys.argv, "--inside-namespace"])
    bring_up_loopback()
    peers = {n: args.peers_dir / n / "bin" / "python" for n in args.servers if n in PEER_VENVS}
    with tempfile.TemporaryDirectory(prefix="serve-vs-peers-") as tmp:
        scratch = Path(tmp)
        found = cases(args.models, scratch)
        for case in found:
            processes = start_servers(case, args.servers, peers, scratch)
            try:
                check_answers(case, args.servers)
                measure(case, args.servers, args, scratch)
            finally:
                stop_servers(processes)
            case.results["ratios"] = ratios(case, args.servers, args.concurrency)
    report(found, args.servers, args.concurrency)
    path = write_results("serve_vs_peers", {
        "servers": args.servers, "concurrency": args.concurrency, "rounds": args.rounds, "seconds": args.seconds,
        "load_generator": "wrk 4.1.0 -t1 + Lua body script; asyncio open-loop client (tests/support/openloop.py)",
        "peers": {n: PEER_VENVS[n] for n in args.servers if n in PEER_VENVS},
        "models": {c.key: c.results for c in found}})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
