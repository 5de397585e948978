from __future__ import annotations

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from handdiff import storage


def test_local_paths_and_file_uris_are_the_same_place(tmp_path):
    storage.write_text(str(tmp_path / "a" / "b.txt"), "hello")
    assert storage.read_text(f"file://{tmp_path}/a/b.txt") == "hello"
    fs, path = storage.arrow_filesystem(f"file://{tmp_path}/a")
    assert isinstance(fs, pafs.LocalFileSystem) and path == str(tmp_path / "a")
    assert storage.exists(str(tmp_path / "a" / "b.txt"))
    assert not storage.exists(str(tmp_path / "a" / "c.txt"))


def test_s3_settings_come_from_the_environment_and_keys_stay_there(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-in-pickles")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    fs, path = storage.arrow_filesystem("s3://bucket/some/prefix/")
    assert path == "bucket/some/prefix"
    assert isinstance(fs, pafs.S3FileSystem)
    state = fs.__reduce__()[1][0]  # what Ray ships to its workers
    assert (state["endpoint_override"], state["scheme"]) == ("127.0.0.1:9", "http")
    assert state["secret_key"] is None  # workers read keys from their own environment
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:10")
    assert storage.s3_endpoint() == "http://127.0.0.1:10"


@pytest.mark.services
def test_fsspec_and_pyarrow_round_trip_on_s3(s3_prefix):
    uri = storage.join(s3_prefix, "dir", "blob.bin")
    storage.write_bytes(uri, b"\x00\x01payload")
    assert storage.read_bytes(uri) == b"\x00\x01payload"
    assert storage.exists(uri)

    table = pa.table({"image_id": ["a", "b"], "width": [640, 480]})
    fs, path = storage.arrow_filesystem(storage.join(s3_prefix, "table.parquet"))
    pq.write_table(table, path, filesystem=fs)
    # written through pyarrow, listed and read through fsspec: the same bucket and keys
    sfs, spath = storage.filesystem(storage.join(s3_prefix, "table.parquet"))
    with sfs.open(spath, "rb") as f:
        assert pq.read_table(f).equals(table)


@pytest.mark.services
def test_a_listing_sees_what_other_processes_wrote_since(s3_prefix, s3_server):
    """No listings cache: a conservation check after a job must see the parts its workers wrote."""
    import boto3

    storage.write_bytes(storage.join(s3_prefix, "parts", "part-a.parquet"), b"a")
    assert storage.listdir(storage.join(s3_prefix, "parts")) == [("part-a.parquet", False)]
    other = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")  # another writer, as a Ray worker is
    bucket, key = s3_prefix.removeprefix("s3://").split("/", 1)
    other.put_object(Bucket=bucket, Key=f"{key}/parts/part-b.parquet", Body=b"b")
    assert storage.listdir(storage.join(s3_prefix, "parts")) == [("part-a.parquet", False), ("part-b.parquet", False)]
    assert storage.exists(storage.join(s3_prefix, "parts", "part-b.parquet"))


def test_s3_clients_retry_with_the_standard_mode(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    fs, _ = storage.filesystem("s3://bucket/x")
    client_config = fs.config_kwargs
    assert client_config["retries"] == {"mode": "standard", "max_attempts": storage.S3_MAX_ATTEMPTS} and storage.S3_MAX_ATTEMPTS >= 5
    assert fs.dircache.use_listings_cache is False


@pytest.mark.services
def test_ray_data_parquet_round_trip_on_s3(ray_session, s3_prefix):
    import ray

    out = storage.join(s3_prefix, "dataset")
    fs, path = storage.arrow_filesystem(out)
    rows = [{"image_id": f"img/{i:03d}.jpg", "score": i / 10} for i in range(100)]
    ray.data.from_items(rows).repartition(4).write_parquet(path, filesystem=fs)

    listed = storage.filesystem(out)[0].ls(storage.filesystem(out)[1])
    assert sum(name.endswith(".parquet") for name in listed) >= 1
    back = ray.data.read_parquet(path, filesystem=fs).take_all()
    assert sorted(r["image_id"] for r in back) == [r["image_id"] for r in rows]
    assert sorted(r["score"] for r in back) == pytest.approx([r["score"] for r in rows])


def test_listdir_names_and_kinds(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("x")
    assert storage.listdir(str(tmp_path)) == [("b.txt", False), ("sub", True)]
    assert storage.listdir(str(tmp_path / "missing")) == []
