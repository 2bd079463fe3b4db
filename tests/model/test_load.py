"""Model import: ONNX files, scikit-learn and PyTorch, and the errors for bad files."""

from __future__ import annotations

import textwrap

import joblib
import numpy as np
import onnxruntime as ort
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tierml.errors import TiermlError
from tierml.model.load import load_model
from tierml.model.profile import analyze


def test_onnx_file_loads_with_its_hash(digits_path):
    loaded = load_model(digits_path)
    assert loaded.origin == "onnx"
    assert len(loaded.sha256) == 64
    assert [n.op_type for n in loaded.proto.graph.node][:2] == ["Conv", "Relu"]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"),
    (b"name: not a model\nlayers: [1, 2]\n", "is not an ONNX model"),
    (bytes(range(256)) * 4, "is not an ONNX model"),
])
def test_not_onnx_files_are_refused(tmp_path, content, message):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(TiermlError, match=message):
        load_model(path)


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.97])
def test_truncated_onnx_is_called_truncated(tmp_path, digits_path, fraction):
    data = digits_path.read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(TiermlError, match="truncated or corrupt"):
        load_model(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(TiermlError, match="not found"):
        load_model(tmp_path / "nope.onnx")
    with pytest.raises(TiermlError, match="is a folder"):
        load_model(tmp_path)


def test_sklearn_pickle_and_recipe_convert_and_agree(tmp_path):
    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(x, y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = load_model(tmp_path / "clf.joblib")
    assert loaded.origin == "sklearn"
    session = ort.InferenceSession(loaded.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    labels = session.run(None, {"input": x[:20].astype(np.float32)})[0]
    assert (labels == clf.predict(x[:20])).all()
    profile = analyze(loaded.proto, {"input": (1, 4)})
    assert profile.params >= clf.coef_.size

    recipe = tmp_path / "recipe.py"
    recipe.write_text(textwrap.dedent("""
        from sklearn.datasets import load_iris
        from sklearn.tree import DecisionTreeClassifier
        def build():
            x, y = load_iris(return_X_y=True)
            return DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
        def nothing():
            return 42
    """))
    assert load_model(f"{recipe}:build").origin == "sklearn"
    with pytest.raises(TiermlError, match=r"must return a torch\.nn\.Module"):
        load_model(f"{recipe}:nothing")
    with pytest.raises(TiermlError, match="has no callable 'missing'"):
        load_model(f"{recipe}:missing")


def test_torch_recipe_and_torchscript(tmp_path):
    torch = pytest.importorskip("torch")
    recipe = tmp_path / "net.py"
    recipe.write_text(textwrap.dedent("""
        import torch
        def build():
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    """))
    with pytest.raises(TiermlError, match="needs its input shape"):
        load_model(f"{recipe}:build")
    loaded = load_model(f"{recipe}:build", {"x": (3, 6)})
    assert loaded.origin == "torch"
    assert analyze(loaded.proto, {"x": (3, 6)}).macs == 3 * (6 * 4 + 4 * 2)

    torch.manual_seed(0)
    scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU()))
    scripted.save(str(tmp_path / "net.pt"))
    proto = load_model(tmp_path / "net.pt", {"x": (2, 6)}).proto
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 6)).astype(np.float32)
    expected = scripted(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x})[0], expected, rtol=1e-5,
                               atol=1e-6)

    (tmp_path / "weights.pt").write_bytes(b"not torchscript")
    with pytest.raises(TiermlError, match="not a TorchScript module"):
        load_model(tmp_path / "weights.pt", {"x": (1, 6)})
