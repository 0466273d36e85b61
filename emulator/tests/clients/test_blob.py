"""azure-storage-blob against the emulator's Blob API, over the same files as DFS."""

import hashlib
import os
import uuid

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContentSettings
from azure.storage.filedatalake import DataLakeServiceClient


@pytest.fixture
def container(emu, credential):
    service = BlobServiceClient(emu.url, credential=credential, **emu.kwargs())
    return service.get_container_client(emu.workspace)


@pytest.fixture
def prefix():
    return f"lake.Lakehouse/Files/blob-{uuid.uuid4().hex[:8]}/"


def test_upload_single_shot_and_in_blocks(container, prefix, emu, credential):
    small = b"small blob"
    c = container.get_blob_client(prefix + "small.txt")
    c.upload_blob(small)
    p = c.get_blob_properties()
    assert p.size == len(small)
    assert p.blob_type == "BlockBlob"
    # Put Blob stores the MD5 the service computes.
    assert bytes(p.content_settings.content_md5) == hashlib.md5(small).digest()
    big = os.urandom(3 * 1024 * 1024 + 7)
    small_blocks = BlobServiceClient(
        emu.url, credential=credential, max_block_size=256 * 1024, max_single_put_size=64 * 1024, **emu.kwargs()
    )
    b = small_blocks.get_blob_client(emu.workspace, prefix + "big.bin")
    b.upload_blob(big, max_concurrency=6)
    assert b.download_blob().readall() == big
    assert b.download_blob(offset=1000, length=10).readall() == big[1000:1010]
    assert (emu.files_dir / prefix.split("/Files/", 1)[1] / "big.bin").read_bytes() == big


def test_no_overwrite(container, prefix):
    c = container.get_blob_client(prefix + "once.txt")
    c.upload_blob(b"1")
    with pytest.raises(ResourceExistsError):
        c.upload_blob(b"2", overwrite=False)
    c.upload_blob(b"3", overwrite=True)
    assert c.download_blob().readall() == b"3"


def test_list_flat_and_by_folder_with_metadata(container, prefix):
    for name in ["a/1.txt", "a/2.txt", "b.txt"]:
        container.get_blob_client(prefix + name).upload_blob(name.encode(), metadata={"n": name.replace("/", "_")})
    flat = list(container.list_blobs(name_starts_with=prefix, include=["metadata"], results_per_page=2))
    files = {b.name[len(prefix):]: b for b in flat if b.metadata.get("hdi_isfolder") != "true"}
    assert sorted(files) == ["a/1.txt", "a/2.txt", "b.txt"]
    assert files["b.txt"].metadata == {"n": "b.txt"}
    assert files["b.txt"].size == 5
    walked = [i.name[len(prefix):] for i in container.walk_blobs(name_starts_with=prefix, delimiter="/")]
    assert "a/" in walked and "b.txt" in walked


def test_metadata_properties_delete(container, prefix):
    c = container.get_blob_client(prefix + "m.txt")
    c.upload_blob(b"m", content_settings=ContentSettings(content_type="text/plain"))
    c.set_blob_metadata({"k": "v"})
    p = c.get_blob_properties()
    assert p.metadata == {"k": "v"}
    assert p.content_settings.content_type == "text/plain"
    c.set_http_headers(ContentSettings(content_type="application/x-other"))
    assert c.get_blob_properties().content_settings.content_type == "application/x-other"
    c.delete_blob()
    with pytest.raises(ResourceNotFoundError):
        c.get_blob_properties()


def test_same_bytes_and_etag_through_both_apis(container, prefix, emu, credential):
    dl = DataLakeServiceClient(emu.url, credential=credential, **emu.kwargs())
    f = dl.get_file_system_client(emu.workspace).get_file_client(prefix + "dfs.txt")
    f.upload_data(b"via dfs", overwrite=True)
    b = container.get_blob_client(prefix + "dfs.txt")
    assert b.download_blob().readall() == b"via dfs"
    assert b.get_blob_properties().etag == f.get_file_properties().etag
    container.get_blob_client(prefix + "blob.txt").upload_blob(b"via blob")
    g = dl.get_file_system_client(emu.workspace).get_file_client(prefix + "blob.txt")
    assert g.download_file().readall() == b"via blob"


def test_lease(container, prefix):
    c = container.get_blob_client(prefix + "leased.txt")
    c.upload_blob(b"x")
    lease = c.acquire_lease(lease_duration=15)
    with pytest.raises(Exception):
        c.upload_blob(b"y", overwrite=True)
    c.upload_blob(b"y", overwrite=True, lease=lease)
    lease.release()
    c.delete_blob()
