"""The `registry` verbs: signing keys, the registry server, listing, checking and cleaning a registry, a group's
desired state, and publishing a build as a signed release.

A verb that works on a registry takes either its root on this machine or the URL of a registry server (with a
token); both paths share everything but the last step. Publishing turns `tierml build`'s OUT/ladder.json into the
model's next version: for every device class its variant's model.onnx, measured metrics and lineage, and a golden
set (16 eval inputs, each variant's outputs on them, a tolerance per precision) that agents replay before they
switch.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ValidationError

from tierml.data.dataset import load_dataset, model_input
from tierml.errors import TiermlError
from tierml.files import sha256_file
from tierml.fleet.client import RegistryClient
from tierml.fleet.desired import GroupDocument, set_group
from tierml.model.load import load_model
from tierml.model.session import make_session
from tierml.optimize.variant import Variant
from tierml.plan.variants import Ladder
from tierml.registry.index import ReleaseRow
from tierml.registry.manifest import Artifact, Release, ReleaseVariant, Tolerance
from tierml.registry.signing import keygen as write_key
from tierml.registry.signing import keyid, load_private, parse_public, sign
from tierml.registry.store import FsckReport, Registry
from tierml.spec.app import LoadedSpec, load_spec
from tierml.stages.building import read_ladder, variant_model

if TYPE_CHECKING:
    from tierml.fleet.server import ControlPlaneOptions

GOLDEN_ROWS = 16
NPZ = "application/x-npz"
ONNX = "application/vnd.onnx"
ArtifactStore = Callable[[Path, str, str], Artifact]  # (file, name, media type) -> the artifact, stored


class KeyPair(BaseModel):
    key: str  # the private key file (mode 0600)
    public_file: str
    public: str  # ed25519:<base64>: what agents are enrolled with (--trust)
    keyid: str


class Releases(BaseModel):
    registry: str
    releases: list[ReleaseRow]


class Collected(BaseModel):
    registry: str
    removed: list[str]  # blobs deleted
    grace_s: float


class DesiredSet(BaseModel):
    registry: str
    group: str
    model: str | None
    version: int | None
    revision: int


class Published(BaseModel):
    registry: str
    model: str
    version: int
    manifest_sha256: str
    devices: dict[str, str]  # device class -> variant
    uploaded: int  # artifacts sent (or stored); a registry that already held one skips it
    skipped: int
    notes: list[str]


def keygen(path: Path) -> KeyPair:
    """Write a new ed25519 signing key to `path` (mode 0600) and its public key to `path`.pub."""
    public = write_key(path)
    return KeyPair(key=str(path), public_file=str(path.with_name(path.name + ".pub")), public=public,
                   keyid=keyid(parse_public(public)))


def serve(options: ControlPlaneOptions, on_ready: Callable[[int], None] | None = None) -> None:
    """Run the registry's control-plane server until SIGTERM (see docs/registry.md for its API)."""
    from tierml.fleet.server import run  # the HTTP server's parser and JSON come with the serve extra

    run(options, on_ready)


def releases(root: Path | None = None, url: str | None = None, token: str | None = None,
             model: str | None = None) -> Releases:
    """The releases of a registry (one model's, when given), oldest first."""
    where = _where(root, url)
    if url is not None:
        return Releases(registry=where, releases=RegistryClient(url, token).releases(model))
    with _opened(root) as registry:
        return Releases(registry=where, releases=registry.index.releases(model))


def fsck(root: Path, trust: list[str] | tuple[str, ...] = ()) -> FsckReport:
    """Re-hash every blob and check every manifest (and its signature by one of the `trust` keys, when given)."""
    keys = [parse_public(t) for t in trust]
    with _opened(root) as registry:
        return registry.fsck(keys or None)


def gc(root: Path, grace_s: float = 3600.0) -> Collected:
    """Delete the blobs no release references once they are `grace_s` old (an upload in progress is younger)."""
    with _opened(root) as registry:
        return Collected(registry=str(root), removed=registry.gc(grace_s), grace_s=grace_s)


def set_desired(group: str, model: str | None, version: int | None, root: Path | None = None,
                url: str | None = None, token: str | None = None) -> DesiredSet:
    """Tell every device of `group` to run `model` `version` (both None: keep what they run)."""
    where = _where(root, url)
    try:
        document = GroupDocument(model=model, version=version)
    except ValidationError as exc:
        raise TiermlError(f"--model and --version: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    if url is not None:
        revision = RegistryClient(url, token).set_desired(group, document)
    else:
        with _opened(root) as registry:
            revision = set_group(registry, group, document)
    return DesiredSet(registry=where, group=group, model=model, version=version, revision=revision)


def publish(spec: str | Path | LoadedSpec, build: Path, key: Path, root: Path | None = None,
            url: str | None = None, token: str | None = None) -> Published:
    """Publish `tierml build`'s output (`build`/ladder.json) as the model's next version, signed with `key`: into
    the registry at `root`, or over HTTP to the registry server at `url` (blobs it already holds are not sent)."""
    where = _where(root, url)
    private = load_private(key)
    loaded = spec if isinstance(spec, LoadedSpec) else load_spec(Path(spec))
    ladder_path = build / "ladder.json"
    ladder = read_ladder(ladder_path)
    if ladder.app != loaded.spec.name:
        raise TiermlError(f"{ladder_path} was built for app '{ladder.app}', not '{loaded.spec.name}' (the spec given)")
    tally = _Tally()
    with tempfile.TemporaryDirectory(prefix="tierml-publish-") as scratch:
        if url is not None:
            client = RegistryClient(url, token)
            version = max((r.version for r in client.releases(ladder.app)), default=0) + 1
            release = release_from_build(loaded, ladder, ladder_path, version, tally.uploader(client), Path(scratch))
            row = client.publish(sign(release.model_dump(mode="json"), private))
        else:
            with _opened(root, create=True) as registry:
                version = registry.index.next_version(ladder.app)
                release = release_from_build(loaded, ladder, ladder_path, version, tally.storer(registry),
                                             Path(scratch))
                row = registry.publish(release, private)
    return Published(registry=where, model=row.model, version=row.version, manifest_sha256=row.manifest_sha256,
                     devices=release.devices, uploaded=tally.stored, skipped=tally.skipped, notes=release.notes)


def release_from_build(loaded: LoadedSpec, ladder: Ladder, ladder_path: Path, version: int, store: ArtifactStore,
                       scratch: Path) -> Release:
    """The release a build makes as `version`, its artifacts stored by `store` (golden files written in `scratch`)."""
    by_name = {v.name: v for v in ladder.variants}
    devices: dict[str, str] = {}
    notes: list[str] = []
    for rung in ladder.rungs:
        if rung.variant is None:
            notes.append(f"{rung.device}: no variant (the build says: {rung.reason})")
        elif rung.tier == "mcu":
            notes.append(f"{rung.device} (mcu): not in this release; an MCU runs the C that `tierml export --target "
                         "mcu` writes, which tierml registry publish does not carry yet")
        else:
            devices[rung.device] = rung.variant
    if not devices:
        raise TiermlError(f"nothing to publish: no device of {ladder_path} gets an ONNX variant ("
                          f"{'; '.join(notes) or 'the ladder has no rungs'})")
    models = {name: variant_model(ladder_path, by_name[name]) for name in sorted(set(devices.values()))}
    inputs = golden_inputs(loaded, next(iter(models.values())))
    golden = scratch / "golden_inputs.npz"
    write_npz(golden, inputs)
    variants = [_release_variant(by_name[name], path, inputs, store, scratch) for name, path in models.items()]
    return Release(model=ladder.app, version=version, devices=devices, variants=variants,
                   golden_inputs=store(golden, golden.name, NPZ), parent=version - 1 if version > 1 else None,
                   notes=notes)


def golden_inputs(loaded: LoadedSpec, model: Path) -> dict[str, np.ndarray]:
    """The first rows of the spec's eval set, by the model's input name."""
    spec = loaded.spec
    if not spec.data.eval:
        raise loaded.doc.error(("data",), "publishing needs golden inputs for the agents' health check: add data.eval "
                                          "(an .npz with x) to the spec")
    proto = load_model(str(model)).proto
    shapes: dict[str | None, tuple[int, ...]] = {k: tuple(v) for k, v in spec.model.input_shapes.items()}
    info = model_input(proto, shapes)
    dataset = load_dataset(loaded.path(spec.data.eval, ("data", "eval"), "eval set"), info, "eval")
    return {info.name: dataset.head(GOLDEN_ROWS).x}


def reference_outputs(model: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's outputs on the golden inputs, one row at a time (a fixed batch of 1 runs too), by output name."""
    session = make_session(model)
    names = [o.name for o in session.get_outputs()]
    rows = len(next(iter(inputs.values())))
    runs = [session.run(names, {k: v[i:i + 1] for k, v in inputs.items()}) for i in range(rows)]
    return {name: np.concatenate([run[j] for run in runs]) for j, name in enumerate(names)}


def tolerance_for(precision: str, outputs: dict[str, np.ndarray]) -> Tolerance:
    """How close a device's outputs on the golden inputs must come to the build host's, scaled by the outputs' span.

    fp32: the same graph on another CPU differs by summation order and fused multiply-adds (about 1e-6 relative),
    so the check is tight: it catches a damaged or wrong model, not rounding. fp16 keeps about three significant
    digits and kernels accumulate in fp16 on some devices and fp32 on others: 0.2 % of the span (under one 8-bit
    step). int8 (and mixed): integer kernels requantize with different rounding (VNNI, NEON, per-tensor or
    per-channel paths), so an output can land a step or two away: two 8-bit steps of the span, and a borderline
    top-1 class may flip on 1 golden input in 10.
    """
    span = max((float(np.ptp(v)) for v in outputs.values() if v.size and np.issubdtype(v.dtype, np.floating)),
               default=1.0) or 1.0
    if precision in ("int8", "mixed"):
        return Tolerance(atol=2 * span / 255, rtol=1e-2, min_agreement=0.9)
    if precision == "fp16":
        return Tolerance(atol=2e-3 * span, rtol=1e-2, min_agreement=1.0)
    return Tolerance(atol=1e-4 * span, rtol=1e-3, min_agreement=1.0)


def _release_variant(variant: Variant, model: Path, inputs: dict[str, np.ndarray], store: ArtifactStore,
                     scratch: Path) -> ReleaseVariant:
    outputs = reference_outputs(model, inputs)
    golden = scratch / f"{variant.name}.golden_outputs.npz"
    write_npz(golden, outputs)
    metrics = variant.metrics
    return ReleaseVariant(
        name=variant.name, format="onnx", precision=variant.precision,
        artifacts=[store(model, "model.onnx", ONNX)], golden_outputs=store(golden, "golden_outputs.npz", NPZ),
        tolerance=tolerance_for(variant.precision, outputs),
        latency_ms=metrics.host_latency.median_ms if metrics.host_latency else None,
        quality=metrics.quality.model_dump() if metrics.quality else None,
        lineage={"sha256": variant.sha256, **variant.lineage.model_dump(mode="json")})


@dataclass
class _Tally:
    """How many artifacts a publish stored (or sent), and how many the registry held already."""

    stored: int = 0
    skipped: int = 0

    def storer(self, registry: Registry) -> ArtifactStore:
        return self._store(registry.blobs.has, lambda path, digest: registry.blobs.put_file(path))

    def uploader(self, client: RegistryClient) -> ArtifactStore:
        """HEAD first; PUT only what the server does not hold."""
        return self._store(client.has_blob, client.put_blob)

    def _store(self, has: Callable[[str], bool], put: Callable[[Path, str], object]) -> ArtifactStore:
        def store(path: Path, name: str, media_type: str) -> Artifact:
            digest = sha256_file(path)
            if has(digest):
                self.skipped += 1
            else:
                put(path, digest)
                self.stored += 1
            return Artifact(name=name, sha256=digest, size=path.stat().st_size, media_type=media_type)

        return store


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez without its timestamps: the same arrays make the same bytes, so the same blob (a build published
    twice stores its golden set once)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w") as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def _where(root: Path | None, url: str | None) -> str:
    if (root is None) == (url is None):
        raise TiermlError("give the registry either as a ROOT folder on this machine or as --url http://HOST:PORT "
                          "of a `tierml registry serve` (not both)")
    return str(url or root)


@contextmanager
def _opened(root: Path | None, create: bool = False) -> Iterator[Registry]:
    """A registry root, open for one verb. Only publish creates one: elsewhere a typo is not a registry."""
    assert root is not None
    if not create and not (root / "index.db").exists():
        raise TiermlError(f"{root} is not a registry (no index.db); `tierml registry publish ... {root}` or "
                          f"`tierml registry serve {root}` creates one")
    registry = Registry.open(root)
    try:
        yield registry
    finally:
        registry.close()
