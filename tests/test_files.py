"""tierml.files: sha256 and all-or-nothing writes, seen from the folder a reader would look at."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierml import files


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=3 * 1024) | st.sampled_from([b"", b"x" * (1 << 20), b"y" * ((1 << 20) + 1)]))
def test_the_file_digest_is_the_bytes_digest(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("sha") / "blob"
    path.write_bytes(data)
    assert files.sha256_file(path) == files.sha256_bytes(data) == hashlib.sha256(data).hexdigest()


def test_an_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "report.html"
    path.write_text("old")
    files.atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "calibration.json"
    path.write_text("old")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        files.atomic_write_bytes(path, b"new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.json"]


def test_a_staged_folder_replaces_the_target_only_when_complete(tmp_path):
    target = tmp_path / "build"
    target.mkdir()
    (target / "a").write_text("first")
    with pytest.raises(RuntimeError), files.staged_dir(target) as staging:
        (staging / "b").write_text("half")
        raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["build"] and (target / "a").read_text() == "first"
    with files.staged_dir(target) as staging:
        (staging / "b").write_text("second")
    assert [p.name for p in target.iterdir()] == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["build"]


def test_a_new_folder_never_replaces_one_that_exists(tmp_path):
    target = tmp_path / "1"
    target.mkdir()  # even an empty one, which rename() would silently replace
    with pytest.raises(FileExistsError), files.new_dir(target) as staging:
        (staging / "model.onnx").write_bytes(b"x")
    assert list(target.iterdir()) == [] and [p.name for p in tmp_path.iterdir()] == ["1"]
