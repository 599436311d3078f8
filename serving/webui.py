"""The Gradio web UI mounted on the UI service's app, predicting through the same handler as the API."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from runtime.predictor import Prediction
from serving.codecs import record_rows
from serving.handler import PredictionHandler
from serving.model import ServedModel
from serving.settings import Settings
from serving.worker import Worker

if TYPE_CHECKING:
    import gradio as gr

    from modelcard.card import Metrics
    from monitoring.quality import LiveFigures


class WebUiMount:
    """Builds the UI and mounts it on `app` at /ui, once per process (the UI service's worker)."""

    def __init__(
        self, app: FastAPI, model: ServedModel, handler: PredictionHandler, settings: Settings, worker: Worker
    ) -> None:
        self.app = app
        self.model = model
        self.handler = handler
        self.settings = settings
        self.worker = worker
        self._blocks: gr.Blocks | None = None
        self._live: LiveFigures | None = None

    def predict(self, records: list[dict[str, Any]]) -> list[Prediction]:
        """The UI's predictions (records checked by the API's schema): logged and counted with source "ui"."""
        return self.handler.predict("ui", record_rows(records, self.model.card.features), time.perf_counter())

    def explore(self, records: list[dict[str, Any]]) -> list[Prediction]:
        """The what-if picture's extra rows: not predictions anyone asked for, so neither logged nor counted."""
        return self.handler.explore(record_rows(records, self.model.card.features))

    def live_figures(self) -> Metrics | None:
        """The live figures the model card's tab shows; the join is made on the first page load, not at start."""
        if self._live is None:
            # monitoring.quality brings scikit-learn's metrics, SciPy and matplotlib: ~2.5 s, paid when first used.
            from monitoring.quality import LiveFigures

            directory = self.handler.monitor.log_directory
            assert directory is not None
            self._live = LiveFigures(directory, self.model.tag, self.model.card)
        return self._live()

    def mount(self) -> gr.Blocks:
        """Build the Gradio UI and mount it at /ui (once); the Blocks.

        Called from WebUI.__init__, which BentoML runs in the UI's worker before it enters the mounted apps'
        lifespans (where Gradio starts its queue). Importing Gradio takes ~4 s: neither the `bentoml serve`
        parent, nor the API's workers, nor `bentoml build` pay for it.
        """
        if self._blocks is not None:
            return self._blocks
        from ui.files import UiFiles

        settings, model = self.settings, self.model
        files = UiFiles.for_server(model.service_name, settings.ui_files_max_age_s)
        os.environ.update(files.gradio_environment())  # before Gradio is imported: its folder, and no analytics
        from ui.app import ModelSummary, build_ui
        from ui.mount import mount_blocks, on_queue_failure, shown_files

        summary = ModelSummary(
            model.tag, model.created, model.predictor.runtime.name, notebook_shared=model.share_training_rows
        )
        live = None if self.handler.monitor.log_directory is None else self.live_figures
        blocks = build_ui(
            model.card,
            summary,
            self.predict,
            settings.max_batch_rows,
            files,
            self.explore,
            settings.accept_unseen,
            live=live,
        )
        mount_blocks(self.app, blocks, "/ui", public_prefix=settings.root_path, max_file_bytes=settings.max_body_bytes)
        files.start_sweeping(keep=lambda: shown_files(blocks))
        # A failed Gradio queue answers no UI call again: a new worker will.
        on_queue_failure(self.worker.exit_for_restart)
        self._blocks = blocks
        return blocks

    def running(self) -> bool:
        """Gradio's queue takes events (False before `mount`)."""
        from ui.mount import queue_running

        return self._blocks is not None and queue_running(self._blocks)
