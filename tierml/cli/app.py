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
from tierml.model.measure import LatencyStats
from tierml.model.profile import ModelProfile


class Analysis(BaseModel):
    """`tierml analyze --json`: the profile and, with --measure, the host latency."""

    profile: ModelProfile
    host_latency: LatencyStats | None = None

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


def _load(model: str, input_shape: list[str] | None):  # noqa: ANN202 - returns (LoadedModel, shapes)
    from tierml.model.load import load_model
    from tierml.model.shapes import parse_input_shapes

    shapes = parse_input_shapes(input_shape or [])
    return load_model(model, shapes), shapes


def _profile(model: str, input_shape: list[str] | None):  # noqa: ANN202 - returns (LoadedModel, ModelProfile)
    from tierml.model.profile import analyze

    loaded, shapes = _load(model, input_shape)
    return loaded, analyze(loaded.proto, shapes, source=loaded.source, sha256=loaded.sha256)


def _measure(loaded, profile, threads: int, runs: int, per_node: bool, quiet: bool):  # noqa: ANN001, ANN202
    from tierml.model.measure import measure_latency

    inputs = {t.name: t for t in profile.inputs}
    with progress_bar(f"timing {runs} runs", quiet) as update:
        return measure_latency(loaded.proto, inputs, threads=threads, runs=runs, per_node=per_node,
                               progress=lambda done, total: update("run", done, total))


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

    loaded, profile = _profile(model, input_shape)
    stats = _measure(loaded, profile, threads, runs, per_node, as_json) if measure else None
    if report:
        from tierml.report.analyze import analyze_report

        write_report(report, analyze_report(profile, stats), as_json)

    def view() -> object:
        from rich.console import Group

        return Group(profile_view(profile, top), *([latency_view(stats)] if stats else []))

    emit(Analysis(profile=profile, host_latency=stats), as_json, view)


def write_report(path: Path, html: str, quiet: bool) -> None:
    """Write the report atomically (a temporary file renamed into place)."""
    if path.is_dir():
        raise TiermlError(f"--report {path} is a folder; give a file name such as {path / 'report.html'}")
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(html)
        os.replace(tmp, path)
    except OSError as exc:
        raise TiermlError(f"cannot write the report to {path}: {exc.strerror or exc}") from exc
    if not quiet:
        err.print(f"report written to {path}")


def _calibration(path: Path | None, threads: int, quiet: bool):  # noqa: ANN202 - returns Calibration
    from tierml.hardware import calibrate as cal

    if path is not None:
        return cal.load(path)
    default = cal.default_path(threads)
    if default.exists():
        stored = cal.load(default)
        if cal.matches_host(stored):
            return stored
    if not quiet:
        err.print(f"no calibration of this host at {threads} thread(s) yet: calibrating (about 30 s), "
                  f"saving to {default}")
    with progress_bar("calibrating host", quiet) as update:
        fresh = cal.calibrate(threads, progress=update)
    cal.save(fresh, default)
    return fresh


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
    from tierml.hardware.assessment import assess
    from tierml.hardware.calibrate import host_device
    from tierml.hardware.catalog import load_catalog
    from tierml.hardware.roofline import RooflineEstimator

    if precision not in ("auto", "fp32", "int8"):
        raise TiermlError(f"--precision must be auto, fp32 or int8, not '{precision}'")
    cat = load_catalog(catalog or [])
    for name in device or []:
        if name != "host":
            cat.device(name)  # unknown names fail before any slow work
    for name in link or []:
        cat.link(name)
    loaded, profile = _profile(model, input_shape)
    cal = _calibration(calibration, threads, as_json)
    host, source = host_device(cal)
    cat = cat.with_device(host, {"tierml-calibrate": source})
    names = device or ["host", *[d for d in cat.devices if d != "host"]]
    stats = _measure(loaded, profile, threads, 30, False, as_json) if measure else None
    result = assess(profile, cat, RooflineEstimator(cal), names, link or [], precision, cal.describe(), stats)
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
    from tierml.hardware.calibrate import host_device
    from tierml.hardware.roofline import RooflineEstimator
    from tierml.plan.planner import load_context, plan
    from tierml.spec.app import load_spec

    loaded = load_spec(spec)
    cal = _calibration(calibration, threads, as_json)
    context = load_context(loaded, RooflineEstimator(cal), catalog or [], host_device(cal))
    if ladder is not None:
        from tierml.plan.planner import use_ladder

        use_ladder(context, ladder)
    with progress_bar("scoring placements", as_json) as update:
        result = plan(context, cal.describe(), str(spec), update)
    if report:
        from tierml.report.plan import plan_report

        write_report(report, plan_report(result), as_json)
    emit(result, as_json, lambda: plan_view(result))
    if result.winner is None:
        raise SystemExit(3)


def _catalog_with_host(extra: list[Path], spec_catalogs: list[Path], cal: object):  # noqa: ANN202 - Catalog
    from tierml.hardware.calibrate import host_device
    from tierml.hardware.catalog import load_catalog

    host = host_device(cal)  # type: ignore[arg-type]
    return load_catalog([*spec_catalogs, *extra]).with_device(host[0], {"tierml-calibrate": host[1]})


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
    from tierml.export.target import device_runtimes
    from tierml.hardware.roofline import RooflineEstimator
    from tierml.optimize.ladder import build as build_ladder
    from tierml.spec.app import load_spec

    loaded = load_spec(spec)
    cal = _calibration(calibration, threads, as_json)
    spec_catalogs = [loaded.path(p, ("catalog", i), "catalog file") for i, p in enumerate(loaded.spec.catalog)]
    cat = _catalog_with_host(catalog or [], spec_catalogs, cal)
    with progress_bar("building variants", as_json) as update:
        ladder = build_ladder(loaded, out_dir, cat, RooflineEstimator(cal), cal.host.cpu, threads, target, update,
                              device_runtimes())
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
    import tierml.optimize.registry  # noqa: F401 - registers every pass
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
    from tierml.hardware.roofline import RooflineEstimator
    from tierml.model.shapes import parse_input_shapes
    from tierml.optimize.direct import DataFiles
    from tierml.optimize.direct import optimize as run_optimize

    cal = _calibration(calibration, threads, as_json)
    cat = _catalog_with_host(catalog or [], [], cal)
    files = DataFiles(eval=eval_data, calibration=calibration_data, train=train_data, torch=torch_recipe,
                      weights=weights)
    with progress_bar("optimizing", as_json) as update:
        result = run_optimize(model, passes or [], out_dir, parse_input_shapes(input_shape or []), files, threads,
                              cat, RooflineEstimator(cal), device or [], min_quality, name, update)
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
    from tierml.export.mcu import McuTarget, load_inputs
    from tierml.export.mcu import verify as verify_export
    from tierml.export.target import target_class
    from tierml.hardware.catalog import load_catalog
    from tierml.model.profile import analyze
    from tierml.model.shapes import parse_input_shapes

    target_class(target)  # an unknown target fails before any slow work
    if calib is None:
        raise TiermlError("int8 export needs calibration inputs: --calib data.npz (array x, N x the input shape)")
    if board is not None and not verify:
        raise TiermlError("--board runs the verification on that board: add --verify")
    cat = load_catalog(catalog or [])
    loaded, _ = _load(model, input_shape)
    profile = analyze(loaded.proto, parse_input_shapes(input_shape or _batch_one(loaded.proto)),
                      source=loaded.source, sha256=loaded.sha256)
    samples = load_inputs(calib)
    exporter = McuTarget(samples, cat, device, in_place)
    result = exporter.export(loaded.proto, profile, out_dir)
    if verify and exporter.compiled is not None:
        inputs = load_inputs(eval_inputs) if eval_inputs else samples[:64]
        result.verification = verify_export(loaded.proto, exporter.compiled, out_dir / "verify", inputs, sanitize,
                                            board)
    emit(result, as_json, lambda: mcu_export_view(result))
    v = result.verification
    if v is not None and not (v.host_bit_exact and all(r.bit_exact for r in v.qemu)):
        raise TiermlError("the generated C does not match TFLite Micro bit for bit (see the table); this is a "
                          "tierml bug, please report it with the model")


def _batch_one(model: object) -> list[str]:
    """An MCU runs batch 1: fix a dynamic leading dimension when the others are static."""
    from tierml.model.shapes import graph_inputs

    shapes = []
    for vi in graph_inputs(model):  # type: ignore[arg-type]
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in vi.type.tensor_type.shape.dim]
        if dims and all(dims[1:]):
            shapes.append(f"{vi.name}=" + "x".join(map(str, [1, *dims[1:]])))
    return shapes


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
    from tierml.hardware import calibrate as cal

    with progress_bar("calibrating host", as_json) as update:
        result = cal.calibrate(threads, progress=update, quick=quick)
    path = out_file or cal.default_path(threads)
    cal.save(result, path)
    if not as_json:
        err.print(f"calibration saved to {path}")
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
    try:
        from tierml.hybrid.encoding import Encoding

        for code in codes:
            Encoding.parse(code)
    except ValueError as exc:
        raise TiermlError(f"--encodings: {exc}") from None
    if objective not in ("latency", "throughput"):
        raise TiermlError(f"--objective must be latency or throughput, not '{objective}'")
    if model == "run":
        _split_run(bundle, server, requests, deadline_ms, device_factor, as_json)
        return
    from tierml.cli.render import split_view
    from tierml.hardware.catalog import load_catalog
    from tierml.hybrid.planner import link_state, plan_split, side_for

    cat = load_catalog(catalog or [])
    chosen_link = cat.link(link)
    estimator = None
    if device != "host" or server != "host":
        from tierml.hardware.roofline import RooflineEstimator

        for name in (device, server):
            if name != "host":
                cat.device(name)
        estimator = RooflineEstimator(_calibration(calibration, 1, as_json))
    loaded, shapes = _load(model, input_shape)
    result = plan_split(loaded.proto, shapes, side_for(device, device_factor, cat.devices, estimator),
                        side_for(server, 1.0, cat.devices, estimator), link_state(chosen_link), codes,
                        objective=objective)
    if out_dir is not None:
        from tierml.hybrid.bundle import write_bundle

        write_bundle(out_dir, Path(loaded.source).stem, result.graph, result.profiles, result.table, codes)
    if report:
        from tierml.report.split import split_report

        write_report(report, split_report(result, f"{loaded.source} on {device} -> {server} over {link}"), as_json)
    data = {"model": loaded.source, "device": device, "server": server, "link": link,
            "device_factor": device_factor, "objective": objective, **result.to_dict(top)}
    if as_json:
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
    else:
        out.print(split_view(data))


def _split_run(bundle: Path | None, server: str, requests: int, deadline_ms: float | None, device_factor: float,
               as_json: bool) -> None:
    import numpy as np
    import onnx

    from tierml.hybrid.bundle import load_bundle
    from tierml.hybrid.runtime import SplitRuntime
    from tierml.model.shapes import dummy_inputs, resolve_input_shapes

    if bundle is None or not (bundle / "split.json").exists():
        raise TiermlError("split run needs the bundle folder: tierml split MODEL --out DIR, then "
                          "tierml serve DIR/server and tierml split run DIR --server http://HOST:PORT")
    if "://" not in server:
        raise TiermlError(f"split run: --server is the URL of the tierml server hosting the tails, not '{server}'")
    loaded = load_bundle(bundle)
    feeds = dummy_inputs(resolve_input_shapes(onnx.load(bundle / "device" / "full.onnx")))
    with SplitRuntime(loaded, server, deadline_ms=deadline_ms, device_factor=device_factor) as runtime:
        results = [runtime.infer(feeds).summary() for _ in range(requests)]
        switches = runtime.policy.switches
    latencies = [r["latency_ms"] for r in results]
    data = {"requests": requests, "degraded": sum(r["degraded"] for r in results),
            "median_ms": float(np.median(latencies)), "p95_ms": float(np.percentile(latencies, 95)),
            "switches": switches, "results": results}
    if as_json:
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
    else:
        out.print(f"{requests} requests: median {data['median_ms']:.1f} ms, p95 {data['p95_ms']:.1f} ms, "
                  f"{data['degraded']} degraded, {switches} cut switches")


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
