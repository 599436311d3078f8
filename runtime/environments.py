"""Where a notebook's own packages live on this machine: the environments training made for its requirements.

Training (train/environment.py) makes one per requirements file under `.cache/notebook-envs/`, each with a
manifest of what it added to the project's packages. Serving from the source tree with the project's own
Python (`MODEL_TAG=… bentoml serve .`) finds the one that holds the packages a model's card names and reads them
from it; a bento or an image has none of these folders and installs the packages instead.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

ENVIRONMENTS = Path(__file__).resolve().parent.parent / ".cache" / "notebook-envs"
# Written last into a finished environment: what was installed. An environment without it is rebuilt.
MANIFEST = "notebook-environment.json"


def normalized_name(name: str) -> str:
    """A package or module name compared the way pip compares names (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def manifest_packages(folder: Path) -> dict[str, str] | None:
    """The packages a finished environment added (distribution -> version); None for a folder that is not one."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    packages: dict[str, str] = json.loads(manifest.read_text())["packages"]
    return packages


def site_packages(folder: Path) -> Path:
    """An environment's own site-packages folder."""
    return Path(sysconfig.get_paths(vars={"base": str(folder), "platbase": str(folder)})["purelib"])


def add_notebook_packages(requirements: dict[str, str]) -> Path | None:
    """Put on sys.path the environment that has the packages a model needs and this Python lacks, if there is one.

    Only an environment made by this Python holding every missing package at the card's version is taken;
    without one nothing changes, and loading the model names the missing package (runtime.predictor).
    """
    missing = {normalized_name(name): wanted for name, wanted in requirements.items() if not _installed(name, wanted)}
    if not missing or not ENVIRONMENTS.is_dir():
        return None
    interpreter = Path(sys.executable).resolve()
    for folder in sorted(ENVIRONMENTS.iterdir()):
        packages = manifest_packages(folder)
        if packages is None or (folder / "bin" / "python").resolve() != interpreter:
            continue
        held = {normalized_name(name): version for name, version in packages.items()}
        if all(held.get(name) == version for name, version in missing.items()):
            site = site_packages(folder)
            sys.path.append(str(site))  # after the project's own: only what it lacks comes from here
            logger.info("Reading %s from the notebook's environment %s", ", ".join(sorted(missing)), folder)
            return site
    return None


def _installed(name: str, version: str) -> bool:
    """This Python has the distribution at that version."""
    try:
        return metadata.version(name) == version
    except metadata.PackageNotFoundError:
        return False
