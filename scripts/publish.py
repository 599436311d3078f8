"""Publish a bento and its model to S3-compatible storage, and pull them back into the local BentoML store.

    python scripts/publish.py publish s3://BUCKET/PREFIX --bento iris_clf_service:latest
    python scripts/publish.py pull s3://BUCKET/PREFIX [--bento iris_clf_service[:VERSION]]

Under the prefix, `publish` writes what `bentoml models export` and `bentoml export` write (it calls them):
`<model>-<version>.bentomodel` for each model of the bento and `<bento>-<version>.bento`; then a manifest
`<bento>-<version>.json` naming those files, and last `<bento>.latest` holding the version, so a reader never
finds a manifest whose files are missing. `pull` downloads every file first and only then imports them, so a
failed pull imports nothing. The endpoint, region and credentials come from the usual AWS variables
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, and AWS_ENDPOINT_URL for a non-AWS endpoint),
read by botocore under s3fs, the fsspec plugin BentoML opens s3:// URLs with. Any failure ends with one line on
stderr and exit status 1 (2 for wrong arguments); --debug shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("publish")

# The S3 error codes that mean the credentials, not the bucket or the path, are wrong.
CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken")


class PublishError(Exception):
    """A failure that the user can fix; its message is the one line printed."""


@dataclass(frozen=True)
class Location:
    """An s3://bucket/prefix URL split into its bucket and its key prefix (no slashes at either end)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Location:
        """Split an s3:// URL; refuse anything else."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise PublishError(f"{url!r} is not an s3://bucket/prefix URL")
        return cls(parts.netloc, parts.path.strip("/"))

    def key(self, name: str) -> str:
        """The bucket-relative path of a file under the prefix, as s3fs names it."""
        return "/".join(part for part in (self.bucket, self.prefix, name) if part)

    def url(self, name: str) -> str:
        """The s3:// URL of a file under the prefix."""
        return f"s3://{self.key(name)}"


def endpoint() -> str:
    """The S3 endpoint in use, for messages."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3"


def filesystem() -> Any:
    """The s3fs filesystem BentoML's own export and import use (fsspec caches one per set of options)."""
    import fsspec

    try:
        fs, _ = fsspec.url_to_fs("s3://")
    except ImportError as exc:
        raise PublishError("s3fs is not installed: run `make setup` (it is in the `publish` dependency group)") from exc
    return fs


def check_bucket(fs: Any, where: Location) -> None:
    """Fail early, with a clear reason, when the endpoint, the credentials or the bucket are wrong."""
    fs.call_s3("list_objects_v2", Bucket=where.bucket, Prefix=where.prefix, MaxKeys=1)


def describe(exc: BaseException, where: Location) -> str:
    """One line naming what is wrong, for the errors object storage raises."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    cause = exc.__cause__ if isinstance(exc.__cause__, ClientError) else exc
    code = cause.response.get("Error", {}).get("Code", "") if isinstance(cause, ClientError) else ""
    if isinstance(exc, (EndpointConnectionError, ConnectionError)):
        return f"cannot reach the S3 endpoint {endpoint()} ({exc}); check AWS_ENDPOINT_URL and the network"
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if code in CREDENTIAL_CODES:
        return f"{endpoint()} refused the credentials ({code}); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if isinstance(exc, PermissionError):
        return f"access to s3://{where.bucket} denied by {endpoint()} ({exc}); check the credentials' permissions"
    if code == "NoSuchBucket" or (isinstance(exc, FileNotFoundError) and "bucket" in str(exc).lower()):
        return f"bucket {where.bucket!r} does not exist at {endpoint()}"
    return f"{type(exc).__name__}: {exc}"


def bento_files(bento: Any) -> tuple[str, dict[str, str]]:
    """The file name of a bento and of each of its models, as `bentoml export` names them."""
    models = {str(model.tag): f"{model.tag.name}-{model.tag.version}.bentomodel" for model in bento.info.all_models}
    return f"{bento.tag.name}-{bento.tag.version}.bento", models


def publish(where: Location, bento_tag: str) -> str:
    """Upload a bento and its models under the prefix, then its manifest and `latest` pointer; the bento's URL."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        bento = bentoml.get(bento_tag)
    except NotFound as exc:
        raise PublishError(f"bento {bento_tag} is not in the local store ({exc})") from exc
    fs = filesystem()
    check_bucket(fs, where)
    bento_file, model_files = bento_files(bento)
    for model_tag, model_file in model_files.items():
        bentoml.models.export_model(model_tag, where.url(model_file))
        logger.info("model %s -> %s", model_tag, where.url(model_file))
    bentoml.export_bento(str(bento.tag), where.url(bento_file))
    logger.info("bento %s -> %s", bento.tag, where.url(bento_file))
    manifest = {"bento": str(bento.tag), "bento_file": bento_file, "models": model_files}
    fs.pipe(where.key(f"{bento.tag.name}-{bento.tag.version}.json"), json.dumps(manifest, indent=1).encode())
    fs.pipe(where.key(f"{bento.tag.name}.latest"), f"{bento.tag.version}\n".encode())
    return where.url(bento_file)


def find_manifest(fs: Any, where: Location, bento: str | None) -> dict[str, Any]:
    """The manifest of the bento asked for: NAME:VERSION, NAME (its latest), or the prefix's only bento."""
    if bento is None:
        names = sorted(Path(path).name.removesuffix(".latest") for path in fs.glob(where.key("*.latest")))
        if not names:
            raise PublishError(f"no bento published under {where.url('')} (no <bento>.latest file there)")
        if len(names) > 1:
            found = ", ".join(names)
            raise PublishError(f"{len(names)} bentos published under {where.url('')} ({found}); pick one with --bento")
        bento = names[0]
    name, _, version = bento.partition(":")
    if version in ("", "latest"):
        pointer = where.key(f"{name}.latest")
        if not fs.exists(pointer):
            raise PublishError(f"no bento {name} published under {where.url('')}")
        version = fs.cat(pointer).decode().strip()
    manifest = where.key(f"{name}-{version}.json")
    if not fs.exists(manifest):
        raise PublishError(f"no bento {name}:{version} published under {where.url('')}")
    loaded: dict[str, Any] = json.loads(fs.cat(manifest))
    return loaded


def pull(where: Location, bento: str | None) -> str:
    """Download a published bento and its models, then import them into the local store; the bento's tag."""
    fs = filesystem()
    check_bucket(fs, where)
    manifest = find_manifest(fs, where, bento)
    with tempfile.TemporaryDirectory(prefix="bentoml-pull-") as tmp:
        # Everything is downloaded before anything is imported: a failed download leaves the store as it was.
        models = {tag: str(Path(tmp, file)) for tag, file in manifest["models"].items()}
        for tag, local in models.items():
            fs.get(where.key(manifest["models"][tag]), local)
        bento_path = str(Path(tmp, manifest["bento_file"]))
        fs.get(where.key(manifest["bento_file"]), bento_path)
        import_all(models, manifest["bento"], bento_path)
    return str(manifest["bento"])


def import_all(models: dict[str, str], bento_tag: str, bento_path: str) -> None:
    """Import the models, then the bento, from local files; undo the models' import if the bento's fails."""
    import bentoml

    added: list[str] = []
    try:
        for tag, path in models.items():
            if in_store(bentoml.models.get, tag):
                logger.info("model %s is already in the store", tag)
                continue
            bentoml.models.import_model(path)
            added.append(tag)
            logger.info("model %s imported", tag)
        if in_store(bentoml.get, bento_tag):
            logger.info("bento %s is already in the store", bento_tag)
        else:
            bentoml.import_bento(bento_path)
            logger.info("bento %s imported", bento_tag)
    except BaseException:
        for tag in added:
            bentoml.models.delete(tag)
        raise


def in_store(get: Any, tag: str) -> bool:
    """Whether the store already holds this tag (`get` is bentoml.get or bentoml.models.get)."""
    from bentoml.exceptions import NotFound

    try:
        get(tag)
    except NotFound:
        return False
    return True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: publish or pull, an s3:// prefix, and the bento."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("publish", help="upload a bento and its models to s3://BUCKET/PREFIX")
    up.add_argument("url", help="s3://BUCKET/PREFIX")
    up.add_argument("--bento", required=True, help="the bento's tag, e.g. iris_clf_service:latest")
    down = commands.add_parser("pull", help="import a published bento and its models into $BENTOML_HOME")
    down.add_argument("url", help="s3://BUCKET/PREFIX")
    down.add_argument("--bento", help="NAME or NAME:VERSION (default: the prefix's only bento, its latest version)")
    return parser.parse_args(argv)


def drop_empty_aws_settings() -> None:
    """Treat an empty AWS_* variable as unset, as CI templates leave them (botocore would use an empty region)."""
    for name in [name for name, value in os.environ.items() if name.startswith("AWS_") and not value]:
        del os.environ[name]


def quiet_libraries() -> None:
    """Progress on stdout; libraries' warnings too, so that stderr holds the one line of a failure."""
    import warnings

    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    warnings.simplefilter("ignore")


def main(argv: list[str] | None = None) -> int:
    """Run one command; one line on stderr and a non-zero status on failure."""
    args = parse_args(argv)
    quiet_libraries()
    drop_empty_aws_settings()
    try:
        where = Location.parse(args.url)
        result = publish(where, args.bento) if args.command == "publish" else pull(where, args.bento)
    except Exception as exc:  # a CLI's boundary: every failure becomes one line, the traceback only with --debug
        if args.debug:
            raise
        message = str(exc) if isinstance(exc, PublishError) else describe(exc, Location.parse(args.url))
        sys.stderr.write(f"publish.py {args.command}: {' '.join(message.split())}\n")  # one line, always
        return 1
    logger.info("%s: %s", "published" if args.command == "publish" else "pulled", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
