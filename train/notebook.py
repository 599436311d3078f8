"""Execute a notebook in a fresh kernel with nbclient and take named objects out of that kernel."""

from __future__ import annotations

import hashlib
import logging
import pickle
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from train.errors import MissingVariables, ModelCheckFailed, NotebookFailed

logger = logging.getLogger(__name__)

# What a failed import adds to its error: the one way to give the notebook a package the project does not have.
MISSING_PACKAGE_HINT = (
    ". A package the project does not have goes in a requirements.txt beside the notebook ({folder}/requirements.txt, "
    "pip's syntax, e.g. `lightgbm==4.7.0`): training installs it into an environment of the notebook's own "
    "(docs/training.md)"
)
# Runs in the notebook's kernel after its last cell; it adds nothing to the notebook itself. cloudpickle saves
# what the notebook defined itself (its functions and classes) by value, as BentoML and MLflow do, so they load
# where the notebook never ran; everything imported from a package is saved by reference, as pickle does.
_EXPORT_CODE = """\
import cloudpickle as _pickle
_wanted = {wanted!r}
_optional = {optional!r}
_missing = [_name for _name in _wanted if _name not in globals()]
if _missing:
    raise NameError("notebook did not define: " + ", ".join(_missing))
with open({path!r}, "wb") as _file:
    _pickle.dump({{_name: globals()[_name] for _name in _wanted + _optional if _name in globals()}}, _file, protocol=5)
"""


@dataclass(frozen=True)
class ExecutedNotebook:
    """A notebook after a successful run, with the objects taken out of its kernel."""

    notebook: NotebookNode
    objects: dict[str, Any]
    source_sha256: str
    executed_path: Path


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_notebook(
    path: Path, variables: list[str], output_dir: Path, timeout: int = 600, optional: list[str] | None = None
) -> ExecutedNotebook:
    """Execute every cell of the notebook at `path`, then export `variables` (and `optional` ones it defines)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        # The kernel starts in the notebook's folder, as it would in Jupyter, so relative paths work.
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    executed_path = output_dir / f"{path.stem}.executed.ipynb"
    output_dir.mkdir(parents=True, exist_ok=True)
    logger.info("Executing %s (%d cells)", path, len(notebook.cells))
    try:
        with tempfile.TemporaryDirectory(prefix="train-export-") as tmp, client.setup_kernel():
            _execute_cells(client, notebook, path)
            objects = _export(client, variables, optional or [], Path(tmp) / "objects.pkl", timeout)
    finally:
        nbformat.write(notebook, executed_path)
        logger.info("Executed notebook written to %s", executed_path)
    return ExecutedNotebook(notebook, objects, file_sha256(path), executed_path)


def _execute_cells(client: NotebookClient, notebook: NotebookNode, path: Path) -> None:
    """Run the notebook's cells in order, logging each code cell, and turn a failure into a message naming it."""
    code_cells_run = 0
    code_cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    started = time.monotonic()
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            # One line per cell, readable in a CI log: which cell of how many, its first line, time so far.
            logger.info(
                "Cell %d/%d (%.1f s so far): %s",
                code_cells_run + 1,
                code_cells,
                time.monotonic() - started,
                _first_line(cell),
            )
        try:
            client.execute_cell(cell, index, execution_count=code_cells_run + 1)
        except CellExecutionError as error:
            hint = MISSING_PACKAGE_HINT.format(folder=path.parent) if error.ename == "ModuleNotFoundError" else ""
            source = f"\n--- cell source ---\n{cell.source}"
            raise NotebookFailed(
                f"{path}: cell {index + 1} raised {error.ename}: {error.evalue}{hint}{source}"
            ) from error
        except (CellTimeoutError, DeadKernelError) as error:
            raise NotebookFailed(f"{path}: cell {index + 1} did not finish: {error}") from error
        if cell.cell_type == "code":
            code_cells_run += 1
    logger.info("All %d code cells ran in %.1f s", code_cells, time.monotonic() - started)


def _first_line(cell: NotebookNode, limit: int = 80) -> str:
    """A cell's first non-blank line, cut to `limit` characters."""
    line = next((line.strip() for line in cell.source.splitlines() if line.strip()), "(empty)")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _export(
    client: NotebookClient, variables: list[str], optional: list[str], target: Path, timeout: int
) -> dict[str, Any]:
    """Pickle the named kernel variables to `target` from inside the kernel and load them here."""
    code = _EXPORT_CODE.format(wanted=variables, optional=optional, path=str(target))
    # Sent straight to the kernel client, so the exporting code never becomes part of the notebook.
    kernel_client: Any = client.kc  # an AsyncKernelClient while setup_kernel() is active
    reply = run_sync(kernel_client.execute_interactive)(code, timeout=timeout, store_history=False, output_hook=_ignore)
    content = reply["content"]
    if content["status"] != "ok":
        if content.get("ename") == "NameError":
            raise MissingVariables(
                f"{content['evalue']}. The notebook must leave these variables defined after its last cell: "
                f"{', '.join(variables)} (other names can be given with the --*-var flags)."
            )
        raise NotebookFailed(
            f"could not export {', '.join(variables)} from the kernel: {content.get('ename')}: {content.get('evalue')}"
        )
    # Safe to unpickle: the file was written a moment ago by the kernel we started, into our own temp dir.
    try:
        with target.open("rb") as file:
            objects: dict[str, Any] = pickle.load(file)
    except (AttributeError, ImportError) as error:
        # Something the kernel imported that this process cannot: a module of the notebook's own folder, say.
        raise ModelCheckFailed(
            f"the notebook's objects cannot be loaded outside its kernel ({type(error).__name__}: {error}). "
            "Define such code in the notebook itself (it is saved with the model), or install its package."
        ) from error
    return objects


def _ignore(message: dict[str, Any]) -> None:
    """Swallow the export's IOPub messages instead of echoing them to our stdout."""


def first_heading(notebook: NotebookNode) -> str | None:
    """The text of the notebook's first Markdown heading, or None."""
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip() or None
    return None
