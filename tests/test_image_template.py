"""The image's Dockerfile (deploy/image/Dockerfile.template on BentoML's own) installs only what serving needs.

BentoML renders the template on python_debian.j2 for the default base (python:3.11-slim) and on base.j2 when the
bento names a base image (scripts/build.sh --local-base); python_debian.j2 alone apt-installs build-essential,
curl and gnupg2, which the template's SETUP_BENTO_BASE_IMAGE block leaves out. Both variants are checked here
as BentoML renders them, and a built bento's Dockerfile, and the one `bentoml containerize` builds from it.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

# What BentoML's Debian template installs and serving never uses: compilers, a downloader, a keyring.
BUILD_TOOLS = {"build-essential", "curl", "gnupg", "gnupg2"}
LOCAL_BASE = "localhost/model-service-base:bookworm"  # scripts/build.sh's BASE_IMAGE


def run_instructions(dockerfile: str) -> list[str]:
    """Each RUN instruction of a Dockerfile, its continuation lines joined."""
    logical = re.sub(r"\\\n", " ", dockerfile)
    return [line.strip()[4:] for line in logical.splitlines() if line.strip().startswith("RUN ")]


def words(run: str) -> list[str]:
    """A shell command's words, separators dropped."""
    return [word for word in re.split(r"[\s;&|]+", run) if word]


def installed_build_tools(dockerfile: str) -> set[str]:
    """The build tools any RUN instruction names (as a word: an apt, apk or pip argument, or a command)."""
    return {word for run in run_instructions(dockerfile) for word in words(run) if word in BUILD_TOOLS}


def rendered(tmp_path: Path, **overrides: object) -> str:
    """The Dockerfile BentoML renders from bentofile.yaml's docker options (as `bentoml build` writes it)."""
    from bentoml._internal.bento.build_config import CondaOptions, DockerOptions
    from bentoml._internal.container.generate import generate_containerfile

    options = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["docker"] | overrides
    return generate_containerfile(
        DockerOptions(**options).with_defaults(),
        str(ROOT),
        conda=CondaOptions(),
        bento_fs=tmp_path,
        enable_buildkit=False,  # as `bentoml build` writes it into the bento
    )


def assert_serving_only(dockerfile: str) -> None:
    assert installed_build_tools(dockerfile) == set(), [r for r in run_instructions(dockerfile) if "apt" in r]
    # apt installs nothing fixed: only the system libraries the model's packages are found to lack.
    installs = [
        words(i) for r in run_instructions(dockerfile) for i in re.findall(r"(?:apt-get|apt) install ([^;|]*)", r)
    ]
    assert installs == [["-y", "--no-install-recommends", "$packages"]]
    # The folders BentoML creates at every start are in the image: a read-only root filesystem needs no volume
    # for them (deploy/kubernetes/deployment.yaml mounts one only where it writes).
    (made,) = [r for r in run_instructions(dockerfile) if "install -d" in r]
    assert {f"/home/bentoml/{name}" for name in ("bentos", "models", "envs", "tmp")} <= set(words(made))
    assert dockerfile.rstrip().endswith(
        'ENTRYPOINT ["/bin/bash", "/home/bentoml/bento/src/deploy/sagemaker/entrypoint.sh"]'
    )


def test_bentomls_debian_template_installs_the_build_tools_the_template_leaves_out(tmp_path: Path) -> None:
    """The check itself: BentoML's template, without ours, does install them (so the test below can fail)."""
    assert installed_build_tools(rendered(tmp_path, dockerfile_template=None)) == {"build-essential", "curl", "gnupg2"}


def test_the_default_image_installs_no_build_tools(tmp_path: Path) -> None:
    dockerfile = rendered(tmp_path)
    assert re.search(r"^FROM python:3\.11-slim AS base-container$", dockerfile, re.MULTILINE)
    assert_serving_only(dockerfile)


def test_the_local_base_image_installs_no_build_tools(tmp_path: Path) -> None:
    dockerfile = rendered(tmp_path, base_image=LOCAL_BASE)
    assert re.search(rf"^FROM {re.escape(LOCAL_BASE)} AS base-container$", dockerfile, re.MULTILINE)
    assert_serving_only(dockerfile)


def test_system_packages_are_still_installed_when_asked_for(tmp_path: Path) -> None:
    """The base-image block drops BentoML's fixed packages, not `docker.system_packages`, should a bento need one."""
    (install,) = [r for r in run_instructions(rendered(tmp_path, system_packages=["libgomp1"])) if "libgomp1" in r]
    assert "libgomp1" in words(install) and "rm -rf /var/lib/apt/lists/*" in install


def test_a_missing_system_library_is_looked_up_under_its_debian_package_name(tmp_path: Path) -> None:
    """The image's own shell, run on sonames as `ldd` prints them: Debian policy 8.1 names their packages."""
    (run,) = [r for r in run_instructions(rendered(tmp_path)) if "for library in" in r]
    loop = run[run.index('packages="";') : run.index("done;") + len("done;")]
    libraries = "libgomp.so.1 libstdc++.so.6 libGL.so.1 liblz4.so.1 libssl.so.3 libgfortran.so.5.0.0"
    script = f'libraries="{libraries}"; {loop} echo $packages'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["libgomp1", "libstdc++6", "libgl1", "liblz4-1", "libssl3", "libgfortran5"]


@pytest.mark.slow
def test_a_built_bentos_dockerfiles_install_no_build_tools(
    trained_tag: str, bentoml_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`MODEL_TAG=<model> bentoml build` as a user runs it: the Dockerfile stored in the bento, and the one
    `bentoml containerize` generates from the bento and builds (what the image really is)."""
    import bentoml
    from bentoml._internal.container import construct_containerfile

    from tests.e2e.conftest import build_bento

    tag = build_bento(trained_tag)
    name, version = tag.split(":")
    stored = bentoml_home / "bentos" / name / version / "env" / "docker" / "Dockerfile"
    assert_serving_only(stored.read_text())
    # From the temporary folder, as scripts/build.sh containerizes: BentoML 1.4.39 refuses the bento's template
    # from a temporary build context outside the working directory (bentoml/BentoML#5566).
    monkeypatch.chdir(tempfile.gettempdir())
    with construct_containerfile(bentoml.get(tag), enable_buildkit=False) as (_context, dockerfile):
        containerized = Path(dockerfile).read_text()
    assert "FROM python:3.11-slim AS base-container" in containerized
    assert_serving_only(containerized)
