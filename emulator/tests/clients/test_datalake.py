"""azure-storage-file-datalake against the emulator (DFS, plus the Blob calls it makes)."""

import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.filedatalake import ContentSettings, DataLakeServiceClient


@pytest.fixture
def fs(emu, credential):
    service = DataLakeServiceClient(emu.url, credential=credential, **emu.kwargs())
    return service.get_file_system_client(emu.workspace)


@pytest.fixture
def root(fs):
    """A fresh folder under the lakehouse's Files for each test."""
    name = f"{'lake'}.Lakehouse/Files/sdk-{uuid.uuid4().hex[:8]}"
    d = fs.get_directory_client(name)
    d.create_directory()
    return d


def test_filesystem_properties_and_existence(fs):
    assert fs.exists()
    props = fs.get_file_system_properties()
    assert props.etag


def test_upload_in_parallel_chunks_and_read_back(root, emu):
    data = os.urandom(5 * 1024 * 1024 + 123)
    f = root.get_file_client("big.bin")
    # Small chunks, many threads: appends arrive out of order and in parallel.
    f.upload_data(data, overwrite=True, chunk_size=256 * 1024, max_concurrency=8)
    assert f.download_file().readall() == data
    on_disk = emu.files_dir / root.path_name.split("/Files/", 1)[1] / "big.bin"
    assert on_disk.read_bytes() == data


def test_create_append_flush_in_order(root):
    f = root.get_file_client("ordered.txt")
    f.create_file()
    f.append_data(b"hello ", offset=0, length=6)
    f.append_data(b"world", offset=6, length=5)
    f.flush_data(11)
    assert f.download_file().readall() == b"hello world"
    assert f.get_file_properties().size == 11


def test_no_overwrite_upload_of_existing_file_fails_and_keeps_it(root):
    f = root.get_file_client("keep.txt")
    f.upload_data(b"original", overwrite=True)
    with pytest.raises(ResourceModifiedError):
        f.upload_data(b"replacement", overwrite=False)
    assert f.download_file().readall() == b"original"
    # And a new file with overwrite=False (the SDK's default) is created.
    g = root.get_file_client("new.txt")
    g.upload_data(b"fresh")
    assert g.download_file().readall() == b"fresh"


def test_ranged_download(root):
    f = root.get_file_client("range.bin")
    data = bytes(range(256)) * 64
    f.upload_data(data, overwrite=True)
    assert f.download_file(offset=100, length=50).readall() == data[100:150]
    assert f.download_file(offset=16000).readall() == data[16000:]


def test_properties_metadata_and_content_settings(root):
    f = root.get_file_client("meta.json")
    f.upload_data(
        b"{}",
        overwrite=True,
        metadata={"owner": "tests", "kind": "json"},
        content_settings=ContentSettings(content_type="application/json"),
    )
    p = f.get_file_properties()
    assert p.metadata == {"owner": "tests", "kind": "json"}
    assert p.content_settings.content_type == "application/json"
    f.set_metadata({"owner": "someone else"})
    assert f.get_file_properties().metadata == {"owner": "someone else"}
    f.set_http_headers(ContentSettings(content_type="text/plain", content_language="en"))
    p = f.get_file_properties()
    assert p.content_settings.content_type == "text/plain"
    assert p.content_settings.content_language == "en"
    assert root.get_directory_properties().metadata.get("hdi_isfolder") in (None, "true")


def test_listing_with_paging(fs, root):
    names = [f"f{i:03}.txt" for i in range(25)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: root.get_file_client(n).upload_data(n.encode(), overwrite=True), names))
    root.get_sub_directory_client("sub").create_directory()
    pages = fs.get_paths(path=root.path_name, recursive=True, max_results=10).by_page()
    seen = []
    count = 0
    for page in pages:
        count += 1
        seen.extend(p.name for p in page)
    assert count == 3
    assert sorted(n.rsplit("/", 1)[1] for n in seen) == sorted(names + ["sub"])
    dirs = [p for p in fs.get_paths(path=root.path_name) if p.is_directory]
    assert [d.name.rsplit("/", 1)[1] for d in dirs] == ["sub"]


def test_rename_file_and_directory(fs, root):
    f = root.get_file_client("a.txt")
    f.upload_data(b"A", overwrite=True)
    moved = f.rename_file(f"{fs.file_system_name}/{root.path_name}/b.txt")
    assert moved.download_file().readall() == b"A"
    with pytest.raises(ResourceNotFoundError):
        f.get_file_properties()
    sub = root.create_sub_directory("d1")
    sub.get_file_client("x.txt").upload_data(b"X", overwrite=True)
    new = sub.rename_directory(f"{fs.file_system_name}/{root.path_name}/d2")
    assert new.get_file_client("x.txt").download_file().readall() == b"X"
    assert not sub.exists()


def test_recursive_delete(root):
    sub = root.create_sub_directory("tree")
    for i in range(5):
        sub.get_sub_directory_client(f"d{i}").get_file_client("f.txt").upload_data(b"x", overwrite=True)
    sub.delete_directory()
    assert not sub.exists()
    assert root.exists()


def test_create_if_not_exists_conflicts(root):
    f = root.get_file_client("once.txt")
    f.create_file()
    with pytest.raises(ResourceExistsError):
        f.create_file(match_condition=MatchConditions.IfMissing)


def test_validate_content_sends_md5(root):
    f = root.get_file_client("md5.bin")
    data = os.urandom(70000)
    f.upload_data(data, overwrite=True, validate_content=True)
    assert hashlib.sha256(f.download_file(validate_content=True).readall()).digest() == hashlib.sha256(data).digest()
