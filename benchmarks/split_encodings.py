"""What lossy cut-tensor encodings cost in accuracy, on a real task: text direction (0 / 180 degrees) with PP-OCR cls.

Eval data: text lines rendered here (random words, the DejaVu fonts matplotlib ships), half of them
turned upside down, preprocessed as RapidOCR does (height 48, width <= 192, scaled to [-1, 1], padded).
For cuts spread along the model, every encoding's request bytes (mean over the set, lz4 included) and
its accuracy and top-1 agreement with the uncompressed model.

    flock /work/bench.lock python benchmarks/split_encodings.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import numpy as np
import onnx
from common import print_table, write_results
from PIL import Image, ImageDraw, ImageFont

from tests.support.pretrained import fetch
from tierml.hybrid import encoding as enc
from tierml.model.partition import partition_graph, run_split
from tierml.model.session import make_session
from tierml.serve.client import encode_request

WORDS = ("invoice", "total", "amount", "due", "date", "customer", "order", "shipping", "address", "phone", "number",
         "street", "city", "account", "balance", "payment", "received", "thank", "you", "receipt", "item", "quantity",
         "price", "tax", "discount", "reference", "code")
FONTS = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"


def text_lines(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` preprocessed 1x3x48x192 text-line images and their labels (1 = upside down)."""
    rng = np.random.default_rng(seed)
    fonts = [FONTS / name for name in ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")]
    images, labels = [], []
    for i in range(count):
        font = ImageFont.truetype(str(fonts[i % len(fonts)]), int(rng.integers(22, 34)))
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 4))))
        width = int(ImageDraw.Draw(Image.new("L", (1, 1))).textlength(text, font=font)) + 16
        image = Image.new("RGB", (width, 48), "white")
        ImageDraw.Draw(image).text((8, 6), text, fill="black", font=font)
        flipped = bool(i % 2)
        if flipped:
            image = image.rotate(180)
        images.append(_preprocess(image))
        labels.append(int(flipped))
    return np.stack(images), np.array(labels)


def _preprocess(image: Image.Image, height: int = 48, max_width: int = 192) -> np.ndarray:
    width = min(max_width, int(np.ceil(height * image.width / image.height)))
    array = np.asarray(image.resize((width, height)), dtype=np.float32).transpose(2, 0, 1) / 255.0
    padded = np.zeros((3, height, max_width), np.float32)
    padded[:, :, :width] = (array - 0.5) / 0.5
    return padded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--cuts", type=int, default=8)
    args = parser.parse_args()
    model = onnx.load(fetch("ppocr-cls"))
    graph = partition_graph(model, {None: (1, 3, 48, 192)})
    images, labels = text_lines(args.samples)
    full = make_session(model)
    reference = np.concatenate([full.run(None, {"x": x[None]})[0] for x in images])
    base_accuracy = float(np.mean(reference.argmax(1) == labels))
    prefixes = graph.prefixes()
    picks = sorted({int(k) for k in np.linspace(0, len(prefixes) - 2, args.cuts)})
    rows, records = [], []
    for k in picks:
        cut = prefixes[k]
        head_model, tail_model = graph.head_model(cut), graph.tail_model(cut)
        head = make_session(head_model) if head_model is not None else None
        crossing = [{t: run_split(head, None, {"x": x[None]})[t] for t in cut.tensors} for x in images]
        for code in enc.ALL:
            tail = make_session(enc.decoding_tail(tail_model, code.precision))
            sizes, probs = [], []
            for tensors in crossing:
                encoded = enc.encode(tensors, code.precision)
                body, _ = encode_request(encoded)
                sizes.append(len(enc.compress(body)) if code.lz4 else len(body))
                probs.append(tail.run(None, encoded)[0])
            got = np.concatenate(probs)
            record = {"cut": cut.key()[:50], "head_nodes": len(cut.head), "encoding": code.name,
                      "bytes": float(np.mean(sizes)), "accuracy": float(np.mean(got.argmax(1) == labels)),
                      "agreement": float(np.mean(got.argmax(1) == reference.argmax(1))),
                      "max_abs_prob_delta": float(np.max(np.abs(got - reference)))}
            records.append(record)
            rows.append([record["cut"], code.name, record["bytes"], record["accuracy"], record["agreement"],
                         record["max_abs_prob_delta"]])
    print_table(f"ppocr-cls text direction on {args.samples} rendered lines: full model accuracy {base_accuracy:.3f}",
                ["cut", "encoding", "bytes", "accuracy", "agreement", "max |Δp|"], rows)
    write_results("split_encodings", {"samples": args.samples, "full_accuracy": base_accuracy, "rows": records})


if __name__ == "__main__":
    main()
