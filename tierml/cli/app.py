"""The `tierml` command: one verb per stage. User errors print one line and exit 2."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tierml.errors import TiermlError
from tierml.files import atomic_write_text

app = typer.Typer(
    help="Place one trained model on the cloud-edge-mobile-tiny spectrum, measured.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
# Piped output gets a wide console so tables do not wrap at rich's default of 80 columns.
out = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True)

InputShape = Annotated[list[str] | None, typer.Option(
    "--input-shape", "-s", help="NAME=1x3x224x224 (or 1x3x224x224 for a single input); resolves dynamic dims")]
JsonFlag = Annotated[bool, typer.Option("--json", help="print the result as JSON instead of tables")]
Threads = Annotated[int, typer.Option("--threads", "-t", min=1, help="ONNX Runtime intra-op threads")]
CatalogFiles = Annotated[list[Path] | None, typer.Option(
    "--catalog", help="extra device/link catalog YAML (same-name entries replace built-in ones)")]
ModelArg = Annotated[str, typer.Argument(
    help="model.onnx, model.pt (TorchScript), model.joblib (scikit-learn), or recipe.py:factory")]
ReportFile = Annotated[Path | None, typer.Option("--report", help="write an HTML report with plots here")]


def emit(result: BaseModel, as_json: bool, view: Callable[[], object]) -> None:
    """Print a verb's result: JSON on request, tables otherwise."""
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=1) + "\n")
    else:
        out.print(view())


@contextmanager
def progress_bar(description: str, quiet: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar on stderr driven by (stage, done, total) callbacks."""
    if quiet:
        yield lambda stage, done, total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[stage]}", style="dim"))
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=None, stage="")

        def update(stage: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, stage=stage[:40])

        yield update


@app.command()
def analyze(
    model: ModelArg,
    input_shape: InputShape = None,
    measure: Annotated[bool, typer.Option("--measure/--no-measure", help="time it on this host with ORT")] = False,
    per_node: Annotated[bool, typer.Option("--per-node", help="with --measure: ORT profiler time per node")] = False,
    threads: Threads = 1,
    runs: Annotated[int, typer.Option(min=1, help="--measure: at least this many timed runs (more to fill 0.5 s)")
                                       ] = 50,
    top: Annotated[int, typer.Option(min=1, help="nodes to list")] = 15,
    as_json: JsonFlag = False,
    report: ReportFile = None,
) -> None:
    """Profile a model: parameters, MACs/FLOPs, bytes, peak memory, per-tier op support (and host latency)."""
    from tierml.cli.render import latency_view, profile_view
    from tierml.stages.models import analyze as run_analyze

    with progress_bar(f"timing {runs} runs", as_json or not measure) as update:
        result = run_analyze(model, input_shape, measure, threads, runs, per_node, update)
    if report:
        from tierml.report.analyze import analyze_report

        write_report(report, analyze_report(result.profile, result.host_latency), as_json)

    def view() -> object:
        from rich.console import Group

        stats = result.host_latency
        return Group(profile_view(result.profile, top), *([latency_view(stats)] if stats else []))

    emit(result, as_json, view)


def write_report(path: Path, html: str, quiet: bool) -> None:
    """Write the report atomically (a temporary file renamed into place)."""
    if path.is_dir():
        raise TiermlError(f"--report {path} is a folder; give a file name such as {path / 'report.html'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, html)
    except OSError as exc:
        raise TiermlError(f"cannot write the report to {path}: {exc.strerror or exc}") from exc
    if not quiet:
        err.print(f"report written to {path}")


def notice(quiet: bool) -> Callable[[str], None] | None:
    """Where a stage's one-line notices go: stderr, unless the output is JSON."""
    return None if quiet else lambda message: err.print(message)


@app.command()
def estimate(
    model: ModelArg,
    input_shape: InputShape = None,
    device: Annotated[list[str] | None, typer.Option(
        "--device", "-d", help="device name (repeatable; default: host + every catalogue device)")] = None,
    link: Annotated[list[str] | None, typer.Option(
        "--link", "-l", help="link name (repeatable; default: every catalogue link)")] = None,
    precision: Annotated[str, typer.Option(help="auto | fp32 | int8 (auto: int8 on MCUs and int8-only devices)")
                         ] = "auto",
    catalog: CatalogFiles = None,
    calibration: Annotated[Path | None, typer.Option(help="calibration JSON from `tierml calibrate --out`")] = None,
    threads: Threads = 1,
    measure: Annotated[bool, typer.Option("--measure/--no-measure", help="also time it on this host")] = False,
    as_json: JsonFlag = False,
    report: ReportFile = None,
) -> None:
    """Estimate fit, latency and energy on each device, and transfer time and cost over each link."""
    from tierml.cli.render import estimate_view
    from tierml.stages.estimating import estimate as run_estimate

    with progress_bar("estimating", as_json) as update:
        result = run_estimate(model, input_shape, device or [], link or [], precision, catalog or [], calibration,
                              threads, measure, update, notice(as_json))
    if report:
        from tierml.report.estimate import estimate_report

        write_report(report, estimate_report(result), as_json)
    emit(result, as_json, lambda: estimate_view(result))


@app.command("plan")
def plan_command(
    spec: Annotated[Path | None, typer.Argument(help="the app spec, tierml.yaml")] = None,
    catalog: CatalogFiles = None,
    calibration: Annotated[Path | None, typer.Option(help="calibration JSON from `tierml calibrate --out`")] = None,
    threads: Threads = 1,
    as_json: JsonFlag = False,
    report: ReportFile = None,
    schema: Annotated[bool, typer.Option("--schema", help="print the JSON schema of tierml.yaml and exit")] = False,
    ladder: Annotated[Path | None, typer.Option(
        "--ladder", help="OUT/ladder.json from `tierml build`: devices run their measured variants")] = None,
) -> None:
    """Decide where the model should run: every placement scored, constraints applied in order, explained.

    Exit code 3 when no candidate meets every constraint.
    """
    if schema:
        from tierml.spec.app import json_schema

        sys.stdout.write(json.dumps(json_schema(), indent=1) + "\n")
        return
    if spec is None:
        raise TiermlError("give the app spec: tierml plan tierml.yaml (or --schema for its JSON schema)")
    from tierml.cli.render import plan_view
    from tierml.stages.planning import plan

    with progress_bar("scoring placements", as_json) as update:
        result = plan(spec, catalog or [], calibration, threads, ladder, update, notice(as_json))
    if report:
        from tierml.report.plan import plan_report

        write_report(report, plan_report(result), as_json)
    emit(result, as_json, lambda: plan_view(result))
    if result.winner is None:
        raise SystemExit(3)


@app.command()
def build(
    spec: Annotated[Path, typer.Argument(help="the app spec, tierml.yaml")],
    out_dir: Annotated[Path, typer.Option("--out", help="model repository to write the variants into")] = Path(
        "build"),
    target: Annotated[list[str] | None, typer.Option(
        "--target", help="catalogue device to build for (repeatable; default: build.targets, else the fleet's)")
                      ] = None,
    catalog: CatalogFiles = None,
    calibration: Annotated[Path | None, typer.Option(help="calibration JSON from `tierml calibrate --out`")] = None,
    threads: Threads = 1,
    as_json: JsonFlag = False,
    report: ReportFile = None,
) -> None:
    """Compress the spec's model into a ladder of measured variants and pick one per target device.

    Writes <out>/<app>-<variant>/1/model.onnx + lineage.json (Triton's layout: `tierml serve OUT` serves
    them) and <out>/ladder.json. Exit code 3 when some target gets no variant.
    """
    from tierml.cli.render import ladder_view
    from tierml.stages.building import build as run_build

    with progress_bar("building variants", as_json) as update:
        ladder = run_build(spec, out_dir, target or [], catalog or [], calibration, threads, update, notice(as_json))
    if report:
        from tierml.report.build import build_report

        write_report(report, build_report(ladder), as_json)
    emit(ladder, as_json, lambda: ladder_view(ladder))
    if any(r.variant is None for r in ladder.rungs):
        raise SystemExit(3)


@app.command()
def optimize(
    model: Annotated[str | None, typer.Argument(help="a model (as for analyze) or a tierml.yaml naming model and data")
                     ] = None,
    passes: Annotated[list[str] | None, typer.Option(
        "--pass", "-p", help="NAME[:key=value,...] (repeatable, applied in order), e.g. "
                             "quantize-static:per_channel=true,activation_type=uint8")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="model repository to write the variant into")] = Path(
        "build"),
    name: Annotated[str | None, typer.Option(help="the variant's folder name (default: model-passes)")] = None,
    input_shape: InputShape = None,
    eval_data: Annotated[Path | None, typer.Option("--eval", help=".npz with x (and y) to measure on")] = None,
    calibration_data: Annotated[Path | None, typer.Option("--calibration-data", help=".npz with x for int8 ranges")
                                ] = None,
    train_data: Annotated[Path | None, typer.Option("--train", help=".npz with x, y for pruning/distillation")] = None,
    torch_recipe: Annotated[str | None, typer.Option("--torch", help="file.py:factory: the same network in PyTorch")
                            ] = None,
    weights: Annotated[Path | None, typer.Option(help="state_dict (.pt) for --torch")] = None,
    device: Annotated[list[str] | None, typer.Option("--device", help="also estimate on this catalogue device")
                      ] = None,
    min_quality: Annotated[float | None, typer.Option(help="accuracy/agreement floor for accuracy-aware passes")
                           ] = None,
    list_passes: Annotated[bool, typer.Option("--list-passes", help="list the passes and their options")] = False,
    catalog: CatalogFiles = None,
    calibration: Annotated[Path | None, typer.Option(help="calibration JSON from `tierml calibrate --out`")] = None,
    threads: Threads = 1,
    as_json: JsonFlag = False,
) -> None:
    """Run the passes you name on a model, measure the result against its parent, write it with its lineage."""
    import tierml.optimize.all_passes  # noqa: F401 - registers every pass
    from tierml.optimize.passes import Pass

    if list_passes:
        for pass_name, kind in sorted(Pass.registry.items()):
            options = ", ".join(f"{k}={v.get_default(call_default_factory=True)!r}"
                                for k, v in kind.Config.model_fields.items())
            out.print(f"[bold]{pass_name}[/bold]  {options}", highlight=False)
        return
    if model is None:
        raise TiermlError("give a model or a tierml.yaml: tierml optimize model.onnx --pass simplify")
    from tierml.cli.render import optimized_view
    from tierml.optimize.direct import DataFiles
    from tierml.stages.building import optimize as run_optimize

    files = DataFiles(eval=eval_data, calibration=calibration_data, train=train_data, torch=torch_recipe,
                      weights=weights)
    with progress_bar("optimizing", as_json) as update:
        result = run_optimize(model, passes or [], out_dir, name, input_shape, files, device or [], min_quality,
                              catalog or [], calibration, threads, update, notice(as_json))
    emit(result, as_json, lambda: optimized_view(result))

@app.command("export")
def export_command(
    model: ModelArg,
    target: Annotated[str, typer.Option(help="export target: mcu (int8 C for microcontrollers)")] = "mcu",
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="folder for model.c / model.h")] = Path("mcu_model"),
    calib: Annotated[Path | None, typer.Option(
        help="calibration inputs (.npz with array x, or .npy; N x the model's input shape) for int8 ranges")] = None,
    eval_inputs: Annotated[Path | None, typer.Option(
        "--eval", help="--verify on these inputs (default: the first 64 calibration inputs)")] = None,
    input_shape: InputShape = None,
    device: Annotated[list[str] | None, typer.Option(
        "--device", "-d", help="MCU to size against (repeatable; default: every catalogue MCU)")] = None,
    verify: Annotated[bool, typer.Option(
        "--verify", help="build the C with gcc and require int8 outputs identical to TFLite Micro's")] = False,
    board: Annotated[str | None, typer.Option(
        help="with --verify: also cross-build for this board and run it under QEMU "
             "(mps2-an386: Cortex-M4F with DSP; mps2-an385: Cortex-M3)")] = None,
    sanitize: Annotated[bool, typer.Option(help="with --verify: host build with ASan/UBSan")] = False,
    in_place: Annotated[bool, typer.Option("--in-place/--no-in-place", help="run layers in place where safe")] = True,
    catalog: CatalogFiles = None,
    as_json: JsonFlag = False,
) -> None:
    """Export the model for a tier: --target mcu writes int8 C (model.c/model.h) and reports flash/RAM per MCU.

    Refused (exit 2) when the model fits none of the MCUs it is sized against.
    """
    from tierml.cli.render import mcu_export_view
    from tierml.export.target import target_class
    from tierml.stages.exporting import export

    target_class(target)  # an unknown target fails before any slow work
    if calib is None:
        raise TiermlError("int8 export needs calibration inputs: --calib data.npz (array x, N x the input shape)")
    result = export(model, calib, out_dir, target, input_shape, device or [], catalog or [], in_place, eval_inputs,
                    verify, board, sanitize)
    emit(result, as_json, lambda: mcu_export_view(result))
    v = result.verification
    if v is not None and not (v.host_bit_exact and all(r.bit_exact for r in v.qemu)):
        raise TiermlError("the generated C does not match TFLite Micro bit for bit (see the table); this is a "
                          "tierml bug, please report it with the model")


@app.command()
def devices(
    catalog: CatalogFiles = None,
    tier: Annotated[str | None, typer.Option(help="only this tier: cloud, edge, mobile, mcu")] = None,
    links: Annotated[bool, typer.Option("--links/--no-links", help="also list the links")] = True,
    as_json: JsonFlag = False,
) -> None:
    """List the device and link catalogue (every number with its source)."""
    from tierml.cli.render import catalog_view
    from tierml.hardware.catalog import load_catalog

    if tier not in (None, "cloud", "edge", "mobile", "mcu"):
        raise TiermlError(f"--tier must be cloud, edge, mobile or mcu, not '{tier}'")
    cat = load_catalog(catalog or [])
    emit(cat, as_json, lambda: catalog_view(cat, tier, links))


@app.command()
def calibrate(
    threads: Threads = 1,
    out_file: Annotated[Path | None, typer.Option("--out", help="where to write it (default: the cache)")] = None,
    quick: Annotated[bool, typer.Option(help="a third of the op suite (about 10 s)")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Measure this host: matmul GFLOP/s, memory bandwidth, and per-op-class efficiency for estimates."""
    from tierml.cli.render import calibration_view
    from tierml.hardware.calibrate import default_path
    from tierml.stages.host import calibrate as run_calibrate

    with progress_bar("calibrating host", as_json) as update:
        result = run_calibrate(threads, quick, out_file, update)
    if not as_json:
        err.print(f"calibration saved to {out_file or default_path(threads)}")
    emit(result, as_json, lambda: calibration_view(result))


@app.command()
def serve(
    repository: Annotated[Path, typer.Argument(help="model repository: <repo>/<model>/<version>/model.onnx")],
    host: Annotated[str, typer.Option(help="address to bind (loopback by default; 0.0.0.0 exposes it)")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="HTTP port (0: any free port)")] = 8000,
    token: Annotated[str | None, typer.Option(
        envvar="TIERML_SERVE_TOKEN", help="require 'Authorization: Bearer TOKEN' (health routes stay open)")] = None,
    model_control_mode: Annotated[str, typer.Option(help="none | explicit (load/unload API) | poll")] = "none",
    load_model: Annotated[list[str] | None, typer.Option(
        help="explicit mode: model to load at start (repeatable; '*' = all)")] = None,
    poll_seconds: Annotated[float, typer.Option(min=0.1, help="poll mode: seconds between repository scans")
                            ] = 5.0,
    max_body_mb: Annotated[float, typer.Option(min=0.001, help="largest request body accepted (413 beyond)")
                           ] = 64.0,
    reject_status: Annotated[int, typer.Option(help="status for a full queue or an expired timeout: 503 or 429")
                             ] = 503,
    access_log: Annotated[bool, typer.Option("--access-log", help="one JSON line per request on stderr")] = False,
    engine: Annotated[str, typer.Option(help="builtin | ray (Ray Serve deployment; pip install 'tierml[ray]')")
                      ] = "builtin",
    replicas: Annotated[int, typer.Option(min=1, help="--engine ray: replicas per model")] = 1,
) -> None:
    """Serve a model repository over the Open Inference Protocol (KServe V2 / Triton HTTP), with dynamic batching."""
    import logging

    try:
        from tierml.serve.server import ServeOptions
    except ImportError as exc:
        raise TiermlError(f"tierml serve needs its extra ({exc}): pip install 'tierml[serve]'") from None

    options = ServeOptions(repository=repository, host=host, port=port, token=token, control=model_control_mode,
                           load_models=load_model or [], poll_seconds=poll_seconds,
                           max_body_bytes=int(max_body_mb * 1024 * 1024), reject_status=reject_status,
                           access_log=access_log)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    def ready(bound: int) -> None:
        err.print(f"tierml serve ({engine}): listening on http://{host}:{bound} - models from {repository}")

    if engine == "builtin":
        from tierml.serve.server import run

        run(options, ready)
    elif engine == "ray":
        try:
            from tierml.serve.ray_engine import run as run_ray
        except ImportError as exc:
            raise TiermlError(f"--engine ray needs Ray Serve ({exc}): pip install 'tierml[ray]'") from None
        run_ray(options, replicas, ready)
    else:
        raise TiermlError(f"--engine must be builtin or ray, not '{engine}'")


registry_app = typer.Typer(help="The model registry: keys, publishing builds, the control-plane server, checks.",
                           no_args_is_help=True)
desired_app = typer.Typer(help="What a group of devices should run.", no_args_is_help=True)
registry_app.add_typer(desired_app, name="desired")
app.add_typer(registry_app, name="registry")

RegistryRoot = Annotated[Path | None, typer.Argument(help="registry root folder on this machine (or give --url)")]
RegistryUrl = Annotated[str | None, typer.Option("--url", help="a registry server: http://HOST:PORT (instead of ROOT)")]
RegistryToken = Annotated[str | None, typer.Option(
    "--token", envvar="TIERML_REGISTRY_TOKEN", help="bearer token for --url (publisher or operator role)")]
TrustKeys = Annotated[list[str] | None, typer.Option(
    "--trust", help="publisher public key: KEY.pub or its ed25519:<base64> line (repeatable)")]


rollout_app = typer.Typer(help="Roll a release out to a device group in waves; abort on failures or a worse model.",
                          no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")
RolloutRoot = Annotated[Path, typer.Argument(help="registry root folder (the one `tierml registry serve` serves)")]


def _rollout_line(r: object) -> str:
    from tierml.fleet.rollout import Rollout

    assert isinstance(r, Rollout)
    return (f"{r.id}: {r.state}, wave {r.wave + 1}/{len(r.waves)}, {len(r.assigned)} device(s) on v{r.version}"
            + (f" - {r.reason}" if r.reason else ""))


@rollout_app.command("start")
def rollout_start(
    root: RolloutRoot,
    group: Annotated[str, typer.Option("--group", help="the device group")] = ...,  # type: ignore[assignment]
    model: Annotated[str, typer.Option("--model", help="the release's model")] = ...,  # type: ignore[assignment]
    version: Annotated[int, typer.Option("--version", help="the release's version")] = ...,  # type: ignore[assignment]
    waves: Annotated[str | None, typer.Option(help="rising shares of the group, e.g. 0.01,0.1,0.5,1")] = None,
    bake_s: Annotated[float, typer.Option(min=0.0, help="seconds a healthy wave bakes before the next")] = 300.0,
    max_failure_pct: Annotated[float, typer.Option(help="abort above this share of failed updates")] = 20.0,
    min_devices: Annotated[int, typer.Option(min=1, help="finished updates before the failure share counts")] = 1,
    max_latency_factor: Annotated[float, typer.Option(help="abort when a device's p95 grows by more")] = 1.5,
    max_confidence_drop: Annotated[float, typer.Option(help="abort when mean confidence drops by more")] = 0.05,
    update_timeout_s: Annotated[float, typer.Option(help="an update not done by then counts as failed")] = 900.0,
    canary_first: Annotated[list[str] | None, typer.Option(help="device classes that go first, in order")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a rollout; `tierml rollout run ROOT` (or a running controller) moves it on."""
    from tierml.fleet.rollout import Criteria
    from tierml.stages.rolling import start

    shares = [float(w) for w in waves.split(",")] if waves else None
    criteria = Criteria(min_devices=min_devices, max_failure_pct=max_failure_pct, update_timeout_s=update_timeout_s,
                        max_latency_factor=max_latency_factor, max_confidence_drop=max_confidence_drop)
    result = start(root, group, model, version, shares, bake_s, criteria, canary_first or [])
    emit(result, as_json, lambda: _rollout_line(result))


@rollout_app.command("run")
def rollout_run(
    root: RolloutRoot,
    interval_s: Annotated[float, typer.Option(min=0.01, help="seconds between controller steps")] = 5.0,
    max_s: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
) -> None:
    """Run the rollout controller until no rollout is running."""
    from tierml.stages.rolling import run

    def show(stepped: list) -> None:
        for r in stepped:
            err.print(_rollout_line(r))

    run(root, interval_s, True, max_s, show)


@rollout_app.command("status")
def rollout_status(
    root: RolloutRoot,
    rollout_id: Annotated[str | None, typer.Argument(help="one rollout (default: all)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every rollout's state and the controller's event log."""
    from tierml.stages.rolling import status

    result = status(root, rollout_id)
    emit(result, as_json, lambda: "\n".join([*map(_rollout_line, result.rollouts),
                                               *(f"{e.at}  {e.rollout}  {e.message}" for e in result.events)]))


RolloutId = Annotated[str, typer.Argument(help="the rollout's id (`tierml rollout status ROOT` lists them)")]
Reason = Annotated[str, typer.Option(help="why, for the event log")]


def _rollout_setter(state: str, verb: str, doc: str) -> None:
    """Register `tierml rollout VERB ROOT ID`, which sets the rollout's state by hand."""

    def command(root: RolloutRoot, rollout_id: RolloutId, reason: Reason = "", as_json: JsonFlag = False) -> None:
        from tierml.stages.rolling import set_state

        result = set_state(root, rollout_id, state, reason or f"{verb} by hand")
        emit(result, as_json, lambda: _rollout_line(result))

    command.__doc__ = doc
    rollout_app.command(verb)(command)


for _state, _verb, _doc in (("paused", "pause", "Hold a rollout where it is (devices keep what they were told)."),
                            ("running", "resume", "Let a paused rollout move on."),
                            ("aborted", "abort", "Stop a rollout and send its devices back to the old release.")):
    _rollout_setter(_state, _verb, _doc)


@registry_app.command("keygen")
def registry_keygen(
    key: Annotated[Path, typer.Argument(help="where to write the private key (KEY.pub gets the public one)")],
    as_json: JsonFlag = False,
) -> None:
    """Write a new ed25519 signing key (mode 0600) and its public key (what agents and servers --trust)."""
    from tierml.stages.registering import keygen

    result = keygen(key)
    emit(result, as_json, lambda: f"{result.key} (private, keep it secret)\n{result.public_file}: {result.public}")


@registry_app.command("serve")
def registry_serve(
    root: Annotated[Path, typer.Argument(help="registry root folder (created when missing)")],
    key: Annotated[Path, typer.Option("--key", help="the server's signing key: it signs desired states")],
    tokens: Annotated[Path, typer.Option(
        "--tokens", help='JSON {"tokens": {"<token>": "publisher" | "operator" | "device"}}')],
    trust: TrustKeys = None,
    host: Annotated[str, typer.Option(help="address to bind (loopback by default; 0.0.0.0 exposes it)")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="HTTP port (0: any free port)")] = 8100,
    desired_ttl_s: Annotated[float, typer.Option(
        help="lifetime of a signed desired state; re-signed when half is gone (agents refuse expired ones)")
                             ] = 24 * 3600.0,
    max_blob_mb: Annotated[float, typer.Option(min=0.001, help="largest blob upload accepted (413 beyond)")
                           ] = 2048.0,
    max_json_mb: Annotated[float, typer.Option(min=0.001, help="largest JSON body accepted (413 beyond)")] = 16.0,
    request_timeout_s: Annotated[float, typer.Option(
        min=1.0, help="a request (an upload's whole body too) must arrive within this")] = 600.0,
    access_log: Annotated[bool, typer.Option("--access-log", help="one JSON line per request on stderr")] = False,
) -> None:
    """Serve the registry's control-plane API (docs/registry.md): blobs, releases, desired states, device reports."""
    import logging

    try:
        from tierml.fleet.server import ControlPlaneOptions
    except ImportError as exc:
        raise TiermlError(f"tierml registry serve needs the serve extra ({exc}): pip install 'tierml[serve]'") from None
    from tierml.stages.registering import serve as run_serve

    mib = 1024 * 1024
    options = ControlPlaneOptions(root=root, key=key, trust=trust or [], tokens=tokens, host=host, port=port,
                                  desired_ttl_s=desired_ttl_s, max_blob_bytes=int(max_blob_mb * mib),
                                  max_json_bytes=int(max_json_mb * mib), request_timeout_s=request_timeout_s,
                                  access_log=access_log)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    def ready(bound: int) -> None:
        err.print(f"tierml registry: listening on http://{host}:{bound} - registry {root}")

    run_serve(options, ready)


@registry_app.command("list")
def registry_list(
    root: RegistryRoot = None,
    url: RegistryUrl = None,
    token: RegistryToken = None,
    model: Annotated[str | None, typer.Option(help="only this model's releases")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List a registry's releases, oldest first."""
    from tierml.cli.render import releases_view
    from tierml.stages.registering import releases

    result = releases(root, url, token, model)
    emit(result, as_json, lambda: releases_view(result))


@registry_app.command("fsck")
def registry_fsck(
    root: Annotated[Path, typer.Argument(help="registry root folder")],
    trust: TrustKeys = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-hash every blob and check every manifest (and its signature with --trust). Exit code 1 on problems."""
    from tierml.cli.render import fsck_view
    from tierml.stages.registering import fsck

    report = fsck(root, trust or [])
    emit(report, as_json, lambda: fsck_view(report))
    if not report.clean:
        raise SystemExit(1)


@registry_app.command("gc")
def registry_gc(
    root: Annotated[Path, typer.Argument(help="registry root folder")],
    grace_s: Annotated[float, typer.Option(
        min=0.0, help="keep unreferenced blobs younger than this (a publish in progress has uploaded them)")
                       ] = 3600.0,
    as_json: JsonFlag = False,
) -> None:
    """Delete the blobs no release references (after fsck finds the registry whole)."""
    from tierml.stages.registering import gc

    result = gc(root, grace_s)
    emit(result, as_json, lambda: f"{len(result.removed)} unreferenced blob(s) older than {grace_s:g} s removed")


@desired_app.command("set")
def registry_desired_set(
    root: RegistryRoot = None,
    group: Annotated[str, typer.Option("--group", help="the device group")] = ...,  # type: ignore[assignment]
    model: Annotated[str | None, typer.Option("--model", help="the release's model (omit with --version: keep)")
                     ] = None,
    version: Annotated[int | None, typer.Option("--version", min=1, help="the release's version")] = None,
    url: RegistryUrl = None,
    token: RegistryToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Tell every device of a group which release to run (a new revision of the group's desired state)."""
    from tierml.stages.registering import set_desired

    result = set_desired(group, model, version, root, url, token)
    what = f"{result.model} v{result.version}" if result.model else "keep what they run"
    emit(result, as_json, lambda: f"group {result.group}: {what} (revision {result.revision})")


@registry_app.command("publish")
def registry_publish(
    spec: Annotated[Path, typer.Argument(help="the app spec the build was made from (tierml.yaml)")],
    root: RegistryRoot = None,
    build_dir: Annotated[Path, typer.Option("--build", help="tierml build's --out folder (holds ladder.json)")
                         ] = Path("build"),
    key: Annotated[Path, typer.Option(
        "--key", help="the publisher's signing key (tierml registry keygen KEY; the registry must --trust KEY.pub)")
                   ] = ...,  # type: ignore[assignment]
    url: RegistryUrl = None,
    token: RegistryToken = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish a build as the model's next release: per device its variant, metrics, lineage and a golden set."""
    from tierml.cli.render import published_view
    from tierml.stages.registering import publish

    result = publish(spec, build_dir, key, root, url, token)
    emit(result, as_json, lambda: published_view(result))


@app.command("split")
def split_command(
    model: Annotated[str, typer.Argument(help="model.onnx to split; or `run` to run a written bundle (see BUNDLE)")],
    bundle: Annotated[Path | None, typer.Argument(help="split run: the folder `tierml split MODEL --out` wrote")
                      ] = None,
    device: Annotated[str, typer.Option("--device", "-d", help="head tier: host (measured here) or a catalogue device")
                      ] = "host",
    server: Annotated[str, typer.Option("--server", help="tail tier (host or a catalogue device); split run: its URL")
                      ] = "host",
    link: Annotated[str, typer.Option("--link", "-l", help="catalogue link between them (e.g. dads-4g)")] = "dads-4g",
    input_shape: InputShape = None,
    encodings: Annotated[str, typer.Option(help="comma-separated: fp32, fp16, int8, int8c, each optionally +lz4")
                         ] = "fp32,fp32+lz4,fp16,fp16+lz4",
    device_factor: Annotated[float, typer.Option(min=1.0, help="device = this host slowed by this factor (host only)")
                             ] = 1.0,
    out_dir: Annotated[Path | None, typer.Option("--out", help="write the bundle (device heads, server tails, table)")
                       ] = None,
    top: Annotated[int, typer.Option(min=1, help="ranked cuts to print")] = 10,
    objective: Annotated[str, typer.Option(help="latency (one request) or throughput (pipelined frames: the "
                                                "slowest of device, link, server)")] = "latency",
    requests: Annotated[int, typer.Option(min=1, help="split run: requests to send")] = 20,
    deadline_ms: Annotated[float | None, typer.Option(help="split run: answer locally when remote would miss it")
                           ] = None,
    catalog: CatalogFiles = None,
    calibration: Annotated[Path | None, typer.Option(help="calibration JSON from `tierml calibrate --out`")] = None,
    as_json: JsonFlag = False,
    report: ReportFile = None,
) -> None:
    """Split a model between a device and a server: ranked cuts for a link, and `split run` for the device side."""
    codes = [e.strip() for e in encodings.split(",") if e.strip()]
    if model == "run":
        from tierml.stages.splitting import split_run

        if bundle is None:
            raise TiermlError("split run needs the bundle folder: tierml split MODEL --out DIR, then "
                              "tierml serve DIR/server and tierml split run DIR --server http://HOST:PORT")
        data = split_run(bundle, server, requests, deadline_ms, device_factor)
        if as_json:
            sys.stdout.write(json.dumps(data, indent=1) + "\n")
        else:
            out.print(f"{requests} requests: median {data['median_ms']:.1f} ms, p95 {data['p95_ms']:.1f} ms, "
                      f"{data['degraded']} degraded, {data['switches']} cut switches")
        return
    from tierml.cli.render import split_view
    from tierml.stages.splitting import split

    result = split(model, device, server, link, input_shape, codes, device_factor, objective, out_dir, catalog or [],
                   calibration, notice(as_json))
    if report:
        from tierml.report.split import split_report

        write_report(report, split_report(result.plan, f"{result.source} on {device} -> {server} over {link}"),
                     as_json)
    data = {"model": result.source, "device": device, "server": server, "link": link,
            "device_factor": device_factor, "objective": objective, **result.plan.to_dict(top)}
    if as_json:
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
    else:
        out.print(split_view(data))


def main() -> None:
    """Entry point: user errors are one line on stderr and exit code 2, never a traceback.

    typer itself turns usage mistakes (unknown option, missing argument) into exit code 2.
    """
    try:
        app()
    except TiermlError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:  # anything else is a tierml bug, not the user's
        if os.environ.get("TIERML_DEBUG"):
            raise
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))} (a tierml bug; rerun with "
                  "TIERML_DEBUG=1 for the traceback and report it)", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
