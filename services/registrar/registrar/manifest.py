"""A tree's manifest: every file of a model directory (MLmodel, model.pkl,
requirements, ...) by path, size and sha256, as canonical JSON. Trees come in
through MLflow's API (a version's source, copied) and through modelog's own
(a directory uploaded whole); both are pinned by one manifest.

The manifest is stored in the content-addressed store like any file, and a
version registered from a tree carries the manifest's digest: so one sha256
pins every byte of the tree, and a file that changes in storage no longer
hashes to what its manifest says. Pure: no I/O here."""

import json
import re
from collections import Counter
from dataclasses import dataclass

from modelog_contract.domain.chain import canonical_json

FORMAT = "modelog.manifest/1"
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


# Every manifest's canonical bytes begin so (its keys are sorted: "files"
# before "format"); a stored object that does not is no manifest.
OPENING = b'{"files":['
# A manifest's size at most, for a sweep that looks for manifests among stored objects.
MAX_BYTES = 16 * 1024 * 1024


class InvalidManifest(ValueError):
    """Bytes that are not a manifest modelog wrote, or a tree no manifest may hold."""


@dataclass(frozen=True)
class ManifestFile:
    path: str  # relative, '/'-separated, no '.' or '..' segments
    size: int
    sha256: str


@dataclass(frozen=True)
class Entry:
    """One line of a directory listing, as MLflow's artifact-proxy lists it:
    the name within the listed directory; a directory has no size."""

    name: str
    is_dir: bool
    size: int | None


def check_path(path: str) -> str:
    """A file's path inside a tree: relative and '/'-separated, every segment a
    real name, so no path can climb out of the tree or mean two files."""
    segments = path.split("/")
    if not path or any(s in ("", ".", "..") for s in segments) or "\\" in path or "\x00" in path:
        raise InvalidManifest(f"{path!r} is not a relative path of a file inside the tree")
    return path


def check_paths(paths: list[str]) -> list[str]:
    """Paths a tree may hold together: each a relative path of a file inside
    it, none twice, none both a file and a directory, at least one."""
    if not paths:
        raise InvalidManifest("the tree has no files")
    for path in paths:
        check_path(path)
    if twice := sorted(path for path, n in Counter(paths).items() if n > 1):
        raise InvalidManifest(f"{twice[0]!r} appears twice in the tree")
    _no_file_is_also_a_directory(paths)
    return paths


def build(files: list[ManifestFile]) -> bytes:
    """The manifest of `files`, in path order whatever order they came in, so a
    tree has one manifest and one digest."""
    ordered = sorted(files, key=lambda f: f.path)
    check_paths([f.path for f in ordered])
    for f in ordered:
        if f.size < 0 or not SHA256_HEX.fullmatch(f.sha256):
            raise InvalidManifest(f"{f.path}: a size and a lowercase hex sha256 are needed")
    return canonical_json({"format": FORMAT,
                           "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in ordered]})


def parse(data: bytes) -> list[ManifestFile]:
    """The files a manifest lists; refused unless it is exactly what build()
    writes for them (so a manifest's digest says one thing only)."""
    try:
        document = json.loads(data)
        files = [ManifestFile(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in document["files"]]
        if document.get("format") != FORMAT:
            raise InvalidManifest(f"not a {FORMAT} manifest")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidManifest(f"not a manifest: {error}") from None
    if build(files) != data:
        raise InvalidManifest("the manifest is not in its canonical form")
    return files


def _no_file_is_also_a_directory(paths: list[str]) -> None:
    directories = {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}
    clash = directories.intersection(paths)
    if clash:
        raise InvalidManifest(f"{sorted(clash)[0]!r} is both a file and a directory")


def file_at(files: list[ManifestFile], path: str) -> ManifestFile | None:
    """The file at `path` (leading and trailing slashes ignored), if the tree has one."""
    wanted = path.strip("/")
    return next((f for f in files if f.path == wanted), None)


def listing(files: list[ManifestFile], directory: str) -> list[Entry]:
    """What is directly inside `directory` ('' or '/' is the tree's root), by
    name; nothing for a file or a directory the tree lacks, as MLflow lists."""
    prefix = directory.strip("/")
    prefix = f"{prefix}/" if prefix else ""
    entries: dict[str, Entry] = {}
    for f in files:
        if not f.path.startswith(prefix):
            continue
        name, below, _ = f.path[len(prefix):].partition("/")
        entries[name] = Entry(name, True, None) if below else Entry(name, False, f.size)
    return [entries[name] for name in sorted(entries)]


def total_size(files: list[ManifestFile]) -> int:
    return sum(f.size for f in files)
