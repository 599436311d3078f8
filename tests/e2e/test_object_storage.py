"""The bento and its model published to a real S3 API server (moto, on loopback) and pulled back into an empty store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from benchmarks.servers import free_port, stop_group
from tests.conftest import ROOT
from tests.e2e.server import Server, serve

pytestmark = pytest.mark.slow

MOTO_SERVER = str(Path(sys.executable).parent / "moto_server")
PUBLISH = [sys.executable, str(ROOT / "scripts" / "publish.py")]
BUCKET = "models-release"


def aws_env(endpoint: str, key_id: str, secret: str) -> dict[str, str]:
    """This machine's environment with only these AWS settings: no profile or config file of the host's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    return {
        **env,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # With no key, botocore would ask the EC2 metadata address next; this test talks to loopback only.
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(scope="module")
def s3(artifacts: Path) -> Iterator[dict[str, str]]:
    """`moto_server` in its own process, with a bucket and one IAM user's key, checking credentials like S3 does."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with (artifacts / "moto-server.log").open("w") as log:
        process = subprocess.Popen(
            [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_up(endpoint, process)
            yield aws_env(endpoint, *_set_up_account(endpoint))
        finally:
            stop_group(process)


def _wait_up(endpoint: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Poll the server until it answers HTTP."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert process.poll() is None, "moto_server exited; see test-artifacts/moto-server.log"
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"moto_server not up after {timeout} s")


def _set_up_account(endpoint: str) -> tuple[str, str]:
    """Create the bucket and a user allowed S3, then turn authentication on; the user's key id and secret."""
    admin = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "x",
        "aws_secret_access_key": "x",
    }
    iam = boto3.client("iam", **admin)
    iam.create_user(UserName="publisher")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="publisher", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="publisher")["AccessKey"]
    boto3.client("s3", **admin).create_bucket(Bucket=BUCKET)
    # From now on every request must be signed by a key moto knows, as with a real S3 endpoint.
    httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()
    return key["AccessKeyId"], key["SecretAccessKey"]


def run_publish(env: dict[str, str], home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """scripts/publish.py with this store and these AWS settings."""
    return subprocess.run(
        [*PUBLISH, *args], env={**env, "BENTOML_HOME": str(home)}, capture_output=True, text=True, timeout=180
    )


def s3_client(env: dict[str, str]) -> Any:
    """A boto3 S3 client with these settings."""
    keys = {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}
    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1", **keys)


def bucket_keys(env: dict[str, str], prefix: str) -> list[str]:
    """The file names under a prefix of the bucket, listed with boto3."""
    listing = s3_client(env).list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")
    return sorted(item["Key"].removeprefix(f"{prefix}/") for item in listing.get("Contents", []))


def store_listing(home: Path) -> list[tuple[str, int]]:
    """Every file and folder of a store's bentos and models, with its size: what must not change on failure."""
    paths = [path for store in ("bentos", "models") for path in (home / store).rglob("*")]
    return sorted((str(path.relative_to(home)), path.lstat().st_size) for path in paths)


def answers(server: Server, rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The server's /prediction answer to each row."""
    return [httpx.post(f"{server.url}/prediction", json=row, timeout=10).json() for row in rows]


def test_published_bento_pulled_into_an_empty_store_serves_the_same_model(
    s3: dict[str, str],
    bento_tag: str,
    trained_tag: str,
    bentoml_home: Path,
    served_bento: Server,
    tmp_path: Path,
    artifacts: Path,
) -> None:
    started = time.monotonic()
    published = run_publish(s3, bentoml_home, "publish", f"s3://{BUCKET}/iris", "--bento", bento_tag)
    assert published.returncode == 0, published.stderr
    publish_s = time.monotonic() - started
    model_file, bento_file = f"{trained_tag.replace(':', '-')}.bentomodel", f"{bento_tag.replace(':', '-')}.bento"
    name, version = bento_tag.split(":")
    assert bucket_keys(s3, "iris") == sorted([model_file, bento_file, f"{name}-{version}.json", f"{name}.latest"])

    home = tmp_path / "empty-home"
    home.mkdir()
    pulled = run_publish(s3, home, "pull", f"s3://{BUCKET}/iris")
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.splitlines()[-1] == f"publish: pulled: {bento_tag}"
    assert {path.parent.name for path in (home / "bentos").glob("*/*/bento.yaml")} == {version}
    assert (home / "models" / trained_tag.replace(":", "/") / "model.yaml").is_file()
    pull_s = time.monotonic() - started - publish_s

    log = artifacts / "serve-pulled-bento.log"
    with serve(bento_tag, cwd=tmp_path, log=log, env={"BENTOML_HOME": str(home)}) as server:
        served_s = time.monotonic() - started
        card = httpx.get(f"{server.url}/model", timeout=10).json()
        assert card["tag"] == trained_tag
        rows = [{k: v for k, v in example.items() if k != "label"} for example in card["card"]["examples"]]
        assert rows
        from_s3 = answers(server, rows)
    assert from_s3 == answers(served_bento, rows)
    assert all(answer["model"] == trained_tag for answer in from_s3)
    timings = {"publish_s": publish_s, "pull_s": pull_s, "publish_to_ready_s": served_s}
    (artifacts / "object-storage-timings.json").write_text(json.dumps(timings, indent=1))


def test_pull_of_an_incomplete_release_imports_nothing(
    s3: dict[str, str], bento_tag: str, bentoml_home: Path, tmp_path: Path
) -> None:
    assert run_publish(s3, bentoml_home, "publish", f"s3://{BUCKET}/broken", "--bento", bento_tag).returncode == 0
    # The model's file is there and is downloaded; the bento's is gone.
    s3_client(s3).delete_object(Bucket=BUCKET, Key=f"broken/{bento_tag.replace(':', '-')}.bento")

    result = run_publish(s3, tmp_path, "pull", f"s3://{BUCKET}/broken")

    assert result.returncode != 0
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert store_listing(tmp_path) == []


def _wrong(s3: dict[str, str], case: str) -> tuple[dict[str, str], str, str]:
    """The AWS settings, bucket and the words the error line must contain, for one kind of mistake."""
    if case == "bucket":
        return s3, "no-such-bucket", "bucket 'no-such-bucket' does not exist"
    if case == "secret":
        return (
            {**s3, "AWS_SECRET_ACCESS_KEY": "wrong-secret"},
            BUCKET,
            "refused the credentials (SignatureDoesNotMatch)",
        )
    if case == "key id":
        return (
            {**s3, "AWS_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG0"},
            BUCKET,
            "refused the credentials (InvalidAccessKeyId)",
        )
    if case == "no credentials":
        env = {k: v for k, v in s3.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        return env, BUCKET, "no AWS credentials"
    unreachable = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    # One attempt: botocore's default of five, with back-off, takes 8 s to give up here and fails the same way.
    env = {**s3, "AWS_ENDPOINT_URL": unreachable, "AWS_MAX_ATTEMPTS": "1"}
    return env, BUCKET, f"cannot reach the S3 endpoint {unreachable}"


@pytest.mark.parametrize("command", ["publish", "pull"])
@pytest.mark.parametrize("case", ["bucket", "secret", "key id", "no credentials", "endpoint"])
def test_a_wrong_setting_fails_with_one_line_and_leaves_the_store_alone(
    s3: dict[str, str], bento_tag: str, bentoml_home: Path, tmp_path: Path, command: str, case: str
) -> None:
    env, bucket, expected = _wrong(s3, case)
    url = f"s3://{bucket}/iris"
    if command == "publish":
        home, args = bentoml_home, ["publish", url, "--bento", bento_tag]
    else:
        home, args = tmp_path, ["pull", url]
    before = store_listing(home)

    result = run_publish(env, home, *args)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(f"publish.py {command}: ") and expected in result.stderr, result.stderr
    assert store_listing(home) == before
