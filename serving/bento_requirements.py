"""The Python requirements of a bento: the project's serving packages plus the model's own, from its card.

`bentoml build` imports service.py before it reads the bentofile's `python.requirements_txt`, and expands
environment variables in that path. So, from the source tree, the service writes the file for the model it
was given (MODEL_TAG) and names it in BENTO_REQUIREMENTS, which bentofile.yaml reads: a booster's bento
installs the booster at the version the model was trained with, and a plain scikit-learn model's bento
installs exactly requirements/serving.txt. Inside a bento (no requirements/ folder) nothing is written.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from modelcard.card import ModelCard

logger = logging.getLogger(__name__)

# The variable bentofile.yaml's python.requirements_txt names.
VARIABLE = "BENTO_REQUIREMENTS"
SERVING_REQUIREMENTS = Path("requirements") / "serving.txt"
# Relative to the project: bentoml build takes only a path inside the build context, and none in a hidden folder.
FOLDER = Path("build") / "bento-requirements"


def requirement_lines(card: ModelCard) -> list[str]:
    """The model's own packages as pip lines: the index options they came through, then each at its version.

    A package installed from a URL is installed from it again; a local --find-links folder of the training
    machine is left out, with a warning, since the image is built elsewhere.
    """
    lineage = card.lineage
    options = []
    for option in lineage.index_options:
        value = option.partition(" ")[2]
        if value and "://" not in value:
            logger.warning("The bento leaves out `%s`: a folder of the machine the model was trained on", option)
            continue
        options.append(option)
    pins = [
        f"{name} @ {lineage.requirement_urls[name]}" if name in lineage.requirement_urls else f"{name}=={version}"
        for name, version in sorted(lineage.requirements.items())
    ]
    return options + pins if pins else []


def write_bento_requirements(card: ModelCard, tag: str, root: Path) -> Path | None:
    """Write the model's bento requirements under `root` and name them in BENTO_REQUIREMENTS; None in a bento."""
    serving = root / SERVING_REQUIREMENTS
    if not serving.is_file():
        return None
    own = requirement_lines(card)
    text = serving.read_text()
    if own:
        text += f"# The packages {tag} was trained with beyond the project's (its card's lineage.requirements):\n"
        text += "".join(f"{line}\n" for line in own)
    relative = FOLDER / f"{tag.replace(':', '-')}.txt"
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    written = target.with_suffix(f".{os.getpid()}.tmp")
    written.write_text(text)
    written.replace(target)  # whole or not at all: another process may be serving or building the same model
    os.environ[VARIABLE] = str(relative)
    return target
