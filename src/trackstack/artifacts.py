"""What may be logged as an artifact: checked whole before a byte is copied.

A backend copies what it is given and follows what it finds: a FIFO blocks
the copy for ever, ``/dev/zero`` fills the disk, ``..`` names a folder outside
the run, and a folder holding the store copies the store into itself. So the
source is resolved and walked first, and refused with the file that is wrong.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from trackstack.errors import ArtifactNotFoundError, InvalidInputError

__all__ = ["check_artifact_source"]

_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def check_artifact_source(path: object, protected: Iterable[Path]) -> Path:
    """``path`` as an absolute path, if it is regular files and folders only.

    ``protected`` are the tracker's own files and folders on this machine (its
    store, its journal): a source must not contain one. Raises
    ``ArtifactNotFoundError`` for a missing path, ``InvalidInputError`` for
    anything else that cannot be uploaded as it is.
    """
    if not isinstance(path, str | os.PathLike):
        raise InvalidInputError(
            f"log_artifact takes a file or directory path, got a {type(path).__name__}"
        )
    local = Path(path)
    if local.name in ("", ".", ".."):
        raise InvalidInputError(
            f"artifact path {os.fspath(path)!r} has no name of its own to upload it under; "
            "name the file or folder itself, e.g. log_artifact('outputs')"
        )
    if not local.exists():
        raise ArtifactNotFoundError(
            f"artifact path {str(local)!r} does not exist (looked in {local.absolute()}); "
            "pass an existing file or directory"
        )
    try:
        resolved = local.resolve(strict=True)
    except (OSError, RuntimeError) as error:  # a symlink loop
        raise InvalidInputError(f"artifact {str(local)!r} cannot be resolved: {error}") from None
    guarded = [Path(os.path.realpath(p)) for p in protected]
    _check_entry(resolved, local, guarded)
    if resolved.is_dir():
        _check_tree(resolved, local, guarded)
    return local.absolute()


def _check_entry(path: Path, shown: Path, guarded: list[Path]) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError as error:  # a dangling symlink, or no permission
        raise InvalidInputError(f"artifact {str(shown)!r} cannot be read: {error}") from None
    kind = _KINDS.get(stat.S_IFMT(mode))
    if kind is not None:
        raise InvalidInputError(
            f"artifact {str(shown)!r} is {kind}, not a regular file; copying it would block or "
            "never end. Log a regular file, or leave it out of the folder"
        )
    if stat.S_ISDIR(mode):
        real = Path(os.path.realpath(path))
        for own in guarded:
            if own.is_relative_to(real):
                raise InvalidInputError(
                    f"artifact folder {str(shown)!r} contains this tracker's own {own}; "
                    "uploading it would copy the store or journal into itself. "
                    "Log a folder that does not hold it"
                )


def _check_tree(root: Path, shown: Path, guarded: list[Path]) -> None:
    # Symlinks are followed, as the copy follows them; a folder inside itself is a loop.
    above = {str(root): frozenset([_identity(root)])}
    for folder, folders, files in os.walk(root, followlinks=True, onerror=_unreadable(shown)):
        for name in files:
            inner = Path(folder, name)
            _check_entry(inner, shown / inner.relative_to(root), guarded)
        for name in folders:
            inner = Path(folder, name)
            shown_inner = shown / inner.relative_to(root)
            _check_entry(inner, shown_inner, guarded)
            identity = _identity(inner)
            if identity in above[folder]:
                raise InvalidInputError(
                    f"artifact folder {str(shown_inner)!r} links back to a folder above it; "
                    "the copy would never end. Remove the link or log another folder"
                )
            above[os.path.join(folder, name)] = above[folder] | {identity}


def _identity(folder: Path) -> tuple[int, int]:
    found = os.stat(folder)
    return found.st_dev, found.st_ino


def _unreadable(shown: Path) -> Callable[[OSError], None]:
    def fail(error: OSError) -> None:
        raise InvalidInputError(f"artifact folder {str(shown)!r} cannot be read: {error}")

    return fail
