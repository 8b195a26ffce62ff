"""A tree's manifest (registrar/manifest.py): one tree, one manifest,
one digest; every path stays inside the tree; a listing says what MLflow's
artifact proxy would."""

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registrar.manifest import (
    Entry,
    InvalidManifest,
    ManifestFile,
    build,
    check_path,
    file_at,
    listing,
    parse,
)

segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=8).filter(
    lambda s: s not in (".", ".."))
file_path = st.lists(segment, min_size=1, max_size=4).map("/".join)
digest = st.binary(max_size=16).map(lambda b: hashlib.sha256(b).hexdigest())


def _consistent(paths: list[str]) -> bool:
    directories = {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}
    return not directories.intersection(paths)


trees = st.lists(st.tuples(file_path, st.integers(0, 10**9), digest), unique_by=lambda f: f[0], min_size=1, max_size=12).map(
    lambda files: [ManifestFile(p, s, d) for p, s, d in files]).filter(lambda fs: _consistent([f.path for f in fs]))


def model_tree() -> list[ManifestFile]:
    return [ManifestFile("MLmodel", 420, "a" * 64), ManifestFile("model.pkl", 9000, "b" * 64),
            ManifestFile("requirements.txt", 40, "c" * 64), ManifestFile("code/util.py", 12, "d" * 64),
            ManifestFile("code/sub/deep.py", 0, "e" * 64)]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a loaded machine is slow, not wrong
@given(trees, st.randoms())
def test_a_tree_has_one_manifest_whatever_order_its_files_come_in(files, random):
    shuffled = list(files)
    random.shuffle(shuffled)
    assert build(shuffled) == build(files)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_a_manifest_reads_back_as_the_files_it_lists(files):
    assert parse(build(files)) == sorted(files, key=lambda f: f.path)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_every_file_of_a_tree_is_listed_once_walking_its_directories(files):
    walked, directories = [], [""]
    while directories:
        directory = directories.pop()
        for entry in listing(files, directory):
            path = f"{directory}/{entry.name}" if directory else entry.name
            (directories if entry.is_dir else walked).append(path)
    assert sorted(walked) == sorted(f.path for f in files)


def test_a_listing_names_what_is_directly_inside_with_sizes_for_files_only():
    files = model_tree()
    assert listing(files, "") == [Entry("MLmodel", False, 420), Entry("code", True, None),
                                  Entry("model.pkl", False, 9000), Entry("requirements.txt", False, 40)]
    assert listing(files, "/code/") == [Entry("sub", True, None), Entry("util.py", False, 12)]
    assert listing(files, "model.pkl") == [] and listing(files, "nowhere") == []


def test_a_file_is_found_by_its_path_and_a_directory_is_not_a_file():
    files = model_tree()
    assert file_at(files, "code/sub/deep.py") == ManifestFile("code/sub/deep.py", 0, "e" * 64)
    assert file_at(files, "/MLmodel") == files[0]
    assert file_at(files, "code") is None and file_at(files, "code/sub") is None


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../up", "a/../../b", "a//b", "./a", "a/", "a\\b", "a\x00b"])
def test_no_path_climbs_out_of_the_tree_or_names_two_files(path):
    with pytest.raises(InvalidManifest):
        check_path(path)
    with pytest.raises(InvalidManifest):
        build([ManifestFile(path, 1, "a" * 64)])


def test_a_path_that_is_both_a_file_and_a_directory_is_refused():
    with pytest.raises(InvalidManifest, match="both a file and a directory"):
        build([ManifestFile("model", 1, "a" * 64), ManifestFile("model/weights", 1, "b" * 64)])


def test_a_tree_without_files_is_refused():
    with pytest.raises(InvalidManifest, match="no files"):
        build([])


def test_a_path_twice_is_refused():
    with pytest.raises(InvalidManifest, match="twice"):
        build([ManifestFile("MLmodel", 1, "a" * 64), ManifestFile("MLmodel", 2, "b" * 64)])


@pytest.mark.parametrize("data", [
    b"", b"not json", b"[]", b'{"files": []}', b'{"format": "other/1", "files": []}',
    b'{"files":[],"format":"modelog.manifest/1"} ',  # same content, not its canonical bytes
    b'{"files":[{"path":"a","sha256":"A","size":1}],"format":"modelog.manifest/1"}',
])
def test_bytes_that_are_not_a_canonical_manifest_are_refused(data):
    with pytest.raises(InvalidManifest):
        parse(data)


def test_an_uploaded_file_is_not_taken_for_a_manifest():
    with pytest.raises(InvalidManifest):
        parse(b"\x80\x04\x95pickled model bytes")


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_every_manifest_opens_as_the_orphan_sweep_looks_for(files):
    from registrar.manifest import OPENING

    assert build(files).startswith(OPENING)
