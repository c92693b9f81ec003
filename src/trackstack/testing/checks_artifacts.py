"""Artifacts: files and trees, hidden and empty files, nested folders, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackstack.enums import RunStatus
from trackstack.errors import ArtifactNotFoundError
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.testing.base import ARTIFACTS, SuiteBase
from trackstack.testing.readers import RunReader

__all__ = ["ArtifactChecks", "make_tree"]

TREE = {
    "weights.bin": bytes(range(256)) * 4 + b"\r\n\x00\r\n",
    ".hidden": b"dotfile",
    "empty.txt": b"",
    "sub/deeper/notes.txt": "notes ✓\n".encode(),
}


def make_tree(parent: Path) -> Path:
    """A folder ``model`` holding a binary file, a hidden file, an empty file and nested folders."""
    model = parent / "model"
    for name, data in TREE.items():
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_bytes(data)
    return model


class ArtifactChecks(SuiteBase):
    def test_artifact_files_and_trees_land_byte_for_byte(
        self, tracker: BaseExperimentTracker, reader: RunReader, tmp_path: Path
    ) -> None:
        single = bytes(range(255, -1, -1)) + b"\n\r\n"
        (tmp_path / "model.pkl").write_bytes(single)
        tree = make_tree(tmp_path)
        with tracker.start_run() as run:
            run.log_artifact(tmp_path / "model.pkl")
            run.log_artifact(str(tmp_path / "model.pkl"), artifact_path="best/copy")
            run.log_artifact(tree)
            run.log_artifact(tree, artifact_path="a/b/c")
        expected = {"model.pkl": single, "best/copy/model.pkl": single}
        for prefix in ("", "a/b/c/"):
            expected.update({f"{prefix}model/{name}": data for name, data in TREE.items()})
        for record in self.both(tracker, reader, run.id):
            assert sorted(record.artifacts) == sorted(expected), (
                f"broken promise: {ARTIFACTS}; logged {sorted(expected)}, "
                f"stored {sorted(record.artifacts)}"
            )
        read_artifact = getattr(reader, "read_artifact", None)
        assert read_artifact is not None, (
            "the reader has no read_artifact(run_id, path) -> bytes: the suite compares "
            "every artifact's bytes with what was logged, read through the backend"
        )
        for path, data in expected.items():
            stored = read_artifact(run.id, path)
            assert stored == data, (
                f"broken promise: {ARTIFACTS}; {path!r} was logged as {len(data)} bytes "
                f"{data[:16]!r}..., the backend holds {len(stored)} bytes {stored[:16]!r}..."
            )

    def test_missing_artifact_uploads_nothing(
        self, tracker: BaseExperimentTracker, reader: RunReader, tmp_path: Path
    ) -> None:
        with tracker.start_run() as run:
            with pytest.raises(ArtifactNotFoundError, match="no-such-file"):
                run.log_artifact(tmp_path / "no-such-file.bin")
            with pytest.raises(FileNotFoundError):
                run.log_artifact(tmp_path / "no-such-dir")
        for record in self.both(tracker, reader, run.id):
            assert record.artifacts == []
            assert record.status is RunStatus.FINISHED
