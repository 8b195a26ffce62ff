"""A model directory registers whole through modelog's own API, SDK and CLI:
every file is pinned by the version's manifest and comes back byte for byte,
digest-checked; a tree the registry refuses writes nothing; and a version is
served as the form its registration recorded, so an uploaded file whose bytes
are a manifest is one file, never a tree of other versions' files."""

import hashlib
import io
import json
import os
import pickle

import httpx
import pytest

from modelog.client import DigestMismatch, InvalidTree, ModelogError, manifest_sha256, tree_files
from modelog_platform.adapters.s3 import ArtifactStore, artifact_key
from tests.e2e.helpers import assert_nothing_written, bearer, modelog, unique

pytestmark = pytest.mark.engines

MLFLOW_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def api(stack):
    with httpx.Client(base_url=stack.url("registrar"), timeout=30, headers=bearer("ci-pipeline", "publisher")) as http:
        yield http


@pytest.fixture
def model_dir(tmp_path):
    """An MLflow model directory, as log_model writes one, with a nested folder and an empty file."""
    root = tmp_path / "model"
    (root / "code" / "sub").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n")
    (root / "model.pkl").write_bytes(pickle.dumps({"weights": [0.4, 0.6], "salt": os.urandom(8)}))
    # Stored objects are shared by digest: a file of its own lets a test alter it alone.
    (root / "requirements.txt").write_text(f"scikit-learn==1.5.2\n# {os.urandom(8).hex()}\n")
    (root / "code" / "features.py").write_text("def features(x):\n    return x\n")
    (root / "code" / "sub" / "__init__.py").write_bytes(b"")
    (root / "code" / "sub" / "tabelle_ä.json").write_text('{"ä": 1}', encoding="utf-8")
    return root


def files_in(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def words(output: str) -> str:
    """The CLI's output as one line of words, whatever its wrapping and boxes."""
    return " ".join(output.replace("│", " ").split())


def parts(files: dict[str, bytes]) -> list:
    return [("file", (path, data, "application/octet-stream")) for path, data in files.items()]


def test_a_model_directory_registers_whole_and_downloads_byte_identical(client, model_dir, tmp_path, api):
    model = unique("tree")
    result = client.register_version(model, model_dir, run_id="train-7")
    version = result["state"]["version"]
    assert version["artifact_form"] == "manifest"
    assert version["artifact_sha256"] == manifest_sha256(tree_files(model_dir))

    listed = api.get(f"/v1/models/{model}/versions/1/files").json()
    expected = files_in(model_dir)
    assert listed["artifact_form"] == "manifest"
    assert {f["path"]: (f["size"], f["sha256"]) for f in listed["files"]} == {
        path: (len(data), hashlib.sha256(data).hexdigest()) for path, data in expected.items()}
    one = api.get(f"/v1/models/{model}/versions/1/files/code/features.py")
    assert one.content == expected["code/features.py"]

    copy = client.download(model, 1, tmp_path / "copy")
    assert files_in(copy) == expected


def test_an_uploaded_file_whose_bytes_are_a_manifest_is_served_as_that_file(client, model_dir, tmp_path, api, stack):
    """Version 1 is a tree; version 2 is one file holding version 1's manifest,
    byte for byte (so the very same stored object). Version 2 is a file: it
    never lists or serves version 1's files, natively or through MLflow's proxy."""
    model = unique("crafted")
    client.register_version(model, model_dir)
    manifest_bytes = api.get(f"/v1/models/{model}/versions/1/artifact").content
    assert json.loads(manifest_bytes)["format"] == "modelog.manifest/1"
    crafted = tmp_path / "looks-like-a-manifest.json"
    crafted.write_bytes(manifest_bytes)
    version = client.register_version(model, crafted)["state"]["version"]
    assert version["artifact_form"] == "file"
    assert version["artifact_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()

    listed = api.get(f"/v1/models/{model}/versions/2/files").json()
    assert [f["path"] for f in listed["files"]] == ["artifact"]
    assert api.get(f"/v1/models/{model}/versions/2/files/model.pkl").status_code == 404
    assert client.download(model, 2, tmp_path / "v2.json").read_bytes() == manifest_bytes

    mlflow = httpx.Client(base_url=stack.url("registrar"), headers=bearer("serving", "reader"), timeout=30)
    proxied = mlflow.get(MLFLOW_ARTIFACTS, params={"path": f"models/{model}/2"}).json()
    assert proxied == {"files": [{"path": "artifact", "is_dir": False, "file_size": len(manifest_bytes)}]}
    assert mlflow.get(f"{MLFLOW_ARTIFACTS}/models/{model}/2/model.pkl").status_code == 404
    assert mlflow.get(f"{MLFLOW_ARTIFACTS}/models/{model}/2/artifact").content == manifest_bytes
    # The tree itself is still served as one.
    assert mlflow.get(f"{MLFLOW_ARTIFACTS}/models/{model}/1/model.pkl").content == (model_dir / "model.pkl").read_bytes()


@pytest.mark.parametrize("paths, code, says", [
    (["model.pkl", "../escape.txt"], "invalid_tree", "not a relative path"),
    (["model.pkl", "/etc/cron.d/evil"], "invalid_tree", "not a relative path"),
    (["model.pkl", "code/./x.py"], "invalid_tree", "not a relative path"),
    (["model.pkl", "model.pkl"], "invalid_tree", "appears twice"),
    (["code", "code/x.py"], "invalid_tree", "both a file and a directory"),
])
def test_a_tree_with_a_path_no_directory_may_hold_is_refused_and_writes_nothing(api, engines, paths, code, says):
    model = unique("badtree")
    files = [(path, f"{path} {model}".encode()) for path in paths]
    response = api.post(f"/v1/models/{model}/versions", data={"tree": "true"},
                        files=[("file", (path, data)) for path, data in files])
    assert (response.status_code, response.json()["error"]["code"]) == (400, code), response.text
    assert says in response.json()["error"]["message"]
    assert "filename is its path inside the directory" in response.json()["error"]["message"]
    for _, data in files:
        assert_nothing_written(engines, model, data)


def test_several_files_without_tree_are_refused(api, engines):
    model = unique("several")
    response = api.post(f"/v1/models/{model}/versions", files=parts({"a": b"a" + model.encode(),
                                                                      "b": b"b" + model.encode()}))
    assert (response.status_code, response.json()["error"]["code"]) == (400, "several_files")
    assert "tree=true" in response.json()["error"]["message"]
    assert_nothing_written(engines, model, b"a" + model.encode())


def test_a_tree_over_the_size_limit_is_refused_and_writes_nothing(api, engines):
    model = unique("hugetree")
    halves = {"weights/a.bin": os.urandom(5 * 1024 * 1024), "weights/b.bin": os.urandom(5 * 1024 * 1024)}
    response = api.post(f"/v1/models/{model}/versions", data={"tree": "true"}, files=parts(halves))
    assert (response.status_code, response.json()["error"]["code"]) == (413, "artifact_too_large")
    assert "MODELOG_MAX_UPLOAD_BYTES" in response.json()["error"]["message"]
    for data in halves.values():
        assert_nothing_written(engines, model, data)


def test_a_tree_whose_manifest_is_not_the_one_the_client_computed_is_refused(api, engines, model_dir):
    model = unique("treedigest")
    response = api.post(f"/v1/models/{model}/versions", data={"tree": "true", "sha256": "0" * 64},
                        files=parts(files_in(model_dir)))
    assert (response.status_code, response.json()["error"]["code"]) == (400, "digest_mismatch")
    assert api.get(f"/v1/models/{model}").status_code == 404


def test_the_sdk_refuses_a_directory_with_a_symlink_or_no_file_before_sending(client, model_dir, tmp_path, stack):
    (model_dir / "linked.pkl").symlink_to(model_dir / "model.pkl")
    with pytest.raises(InvalidTree, match="symbolic link"):
        client.register_version(unique("symlink"), model_dir)
    empty = tmp_path / "empty"
    (empty / "only" / "folders").mkdir(parents=True)
    with pytest.raises(InvalidTree, match="no file"):
        client.register_version(unique("empty"), empty)
    cli = modelog("register", unique("symlink"), str(model_dir))
    assert cli.exit_code == 2 and "symbolic link" in words(cli.output)


def test_a_tree_file_altered_in_storage_is_refused_and_nothing_is_left(client, model_dir, engines, tmp_path):
    model = unique("alteredtree")
    client.register_version(model, model_dir)
    data = (model_dir / "requirements.txt").read_bytes()
    store = ArtifactStore(engines)
    tampered = data.replace(b"1.5.2", b"0.0.1")  # same length: only the digest can tell
    store.client.put_object(store.bucket, artifact_key(hashlib.sha256(data).hexdigest()), io.BytesIO(tampered),
                            len(tampered))
    with pytest.raises((ModelogError, DigestMismatch)) as refused:
        client.download(model, 1, tmp_path / "copy")
    assert refused.value.code == "artifact_corrupt"
    assert not (tmp_path / "copy").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".copy")]


def test_the_cli_registers_shows_and_downloads_a_tree(stack, model_dir, tmp_path):
    model = unique("clitree")
    registered = modelog("register", model, str(model_dir), "--run-id", "train-9")
    assert registered.exit_code == 0, registered.output
    shown = modelog("show", model)
    assert shown.exit_code == 0 and "tree" in shown.output, shown.output
    version = modelog("show", model, "1")
    assert json.loads(version.output)["artifact_form"] == "manifest"
    downloaded = modelog("download", model, "1", "--out", str(tmp_path / "back"))
    assert downloaded.exit_code == 0, downloaded.output
    assert "6 files, every sha256 verified" in words(downloaded.output)
    assert files_in(tmp_path / "back") == files_in(model_dir)
    again = modelog("download", model, "1", "--out", str(tmp_path / "back"))
    assert again.exit_code == 2 and "not an empty directory" in words(again.output)
