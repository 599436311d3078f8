"""Where the web UI keeps uploads and results: a private folder of one server's, made at start and swept.

Gradio's default, /tmp/gradio, is shared by every Gradio app on a host, readable by its other users, and
never emptied: 1,000 uploads of 1 MiB stayed on disk after a restart. Here each server gets its own folder
(mode 0700, named after the service and the `bentoml serve` process, so a restarted UI worker finds it
again), folders of servers no longer running are removed, and every file older than `max_age_s` is deleted
by a sweep every few minutes. Only the standard library: this runs before Gradio is imported.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path

logger = logging.getLogger(__name__)

FOLDER_PREFIX = "model-ui-"
# The sweep runs this often at most: waking more often would cost an idle server for nothing.
SWEEP_EVERY_S = 60.0
# Gradio streams an upload into a loose temporary file, then moves it into a folder named by its hash within
# a moment; one still loose after this long is what an upload cut off at the size cap left behind.
LOOSE_MAX_AGE_S = 30.0


class UiFiles:
    """The web UI's private folder: Gradio's uploads and cache under `gradio/`, batch results under `results/`."""

    def __init__(self, root: Path, max_age_s: float) -> None:
        self.root = root
        self.max_age_s = max_age_s
        self.gradio_dir = root / "gradio"
        self.results_dir = root / "results"

    @classmethod
    def for_server(cls, service_name: str, max_age_s: float, parent: Path | None = None) -> UiFiles:
        """This server's folder under the temporary directory, made afresh; other servers' stale ones removed."""
        parent = Path(tempfile.gettempdir()) if parent is None else parent
        server = os.getppid()  # the `bentoml serve` process: the same for a UI worker that restarts
        files = cls(parent / f"{FOLDER_PREFIX}{service_name}-{server}", max_age_s)
        _remove_stale(parent, f"{FOLDER_PREFIX}{service_name}-", keep=files.root)
        files.root.mkdir(mode=0o700, exist_ok=True)
        if _own_folder(files.root):
            os.chmod(files.root, 0o700)  # ours (a restarted UI worker's): private again, whatever it was
        else:
            # Someone else made (or linked) this name first in the shared temporary directory: never use theirs.
            files = cls(Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{service_name}-x", dir=parent)), max_age_s)
        for folder in (files.gradio_dir, files.results_dir):
            folder.mkdir(mode=0o700, exist_ok=True)
        return files

    def gradio_environment(self) -> dict[str, str]:
        """The environment Gradio must see before it is imported: this folder, and no analytics calls home."""
        return {"GRADIO_TEMP_DIR": str(self.gradio_dir), "GRADIO_ANALYTICS_ENABLED": "False"}

    def owns(self, path: str | Path) -> bool:
        """True for a file inside Gradio's part of this folder (what a user uploaded), symlinks resolved."""
        try:
            Path(path).resolve().relative_to(self.gradio_dir.resolve())
        except (ValueError, OSError):
            return False
        return True

    def result_path(self, name: str) -> Path:
        """A new path for a result file called `name`, in a folder of its own that nobody can guess."""
        folder = self.results_dir / secrets.token_hex(16)
        folder.mkdir(mode=0o700, parents=True)
        return folder / name

    def sweep(self, keep: Collection[str] = (), now: float | None = None) -> int:
        """Delete every file older than `max_age_s` but those in `keep`, and folders left empty; the number deleted.

        Loose files in Gradio's folder (uploads cut off before Gradio filed them) go after LOOSE_MAX_AGE_S.
        """
        now = time.time() if now is None else now
        kept = {str(Path(path)) for path in keep}
        deleted = 0
        for folder, _subfolders, names in os.walk(self.root, topdown=False):
            for name in names:
                path = Path(folder) / name
                max_age = LOOSE_MAX_AGE_S if Path(folder) == self.gradio_dir else self.max_age_s
                try:
                    if str(path) not in kept and now - path.lstat().st_mtime > min(max_age, self.max_age_s):
                        path.unlink()
                        deleted += 1
                except OSError:
                    continue
            if Path(folder) not in (self.root, self.gradio_dir, self.results_dir):
                try:
                    Path(folder).rmdir()  # only when empty (bottom-up, so emptied parents go too)
                except OSError:
                    pass
        return deleted

    def start_sweeping(self, keep: Callable[[], Collection[str]] = tuple) -> threading.Thread:
        """Sweep in a daemon thread, every SWEEP_EVERY_S (or max_age_s / 2 when that is shorter).

        `keep()` names the files the UI shows to every visitor (a template to download): never deleted.
        """
        every = min(SWEEP_EVERY_S, self.max_age_s / 2)

        def run() -> None:
            while True:
                time.sleep(every)
                deleted = self.sweep(keep())
                if deleted:
                    logger.info("Deleted %d web UI file(s) older than %.0f s", deleted, self.max_age_s)

        thread = threading.Thread(target=run, name="ui-files-sweep", daemon=True)
        thread.start()
        return thread


def _remove_stale(parent: Path, prefix: str, keep: Path) -> None:
    """Remove folders `<prefix><pid>` of servers whose process is gone."""
    for folder in parent.glob(f"{prefix}*"):
        pid = folder.name.removeprefix(prefix)
        # isdigit() alone takes "²"; only plain digits name a process, and only our own folders are removed.
        if folder == keep or not (pid.isascii() and pid.isdigit()) or _alive(int(pid)):
            continue
        if _own_folder(folder):
            shutil.rmtree(folder, ignore_errors=True)


def _own_folder(folder: Path) -> bool:
    """A real folder (not a link to one) that this user owns."""
    try:
        info = folder.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


def _alive(pid: int) -> bool:
    """True while a process with this id runs (or exists under another user); False for an impossible id."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True
