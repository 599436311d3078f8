"""The model a service runs: found in the store, loaded, and what of its card callers may see."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bentoml
from fastapi.responses import FileResponse, JSONResponse, Response

from modelcard.card import ModelCard
from modelcard.files import EXECUTED_NOTEBOOK_FILE
from runtime.predictor import ModelLoadError, Predictor, load_predictor
from serving.schemas import ModelInfo
from serving.settings import Settings
from serving.store import ModelNotAvailable, require_stored_model

# What GET /model leaves out for callers without the API key (unless SERVING_SHARE_TRAINING_ROWS): training's own
# rows and words. The examples are test rows, shown in the API docs and the UI anyway.
WITHHELD = ["card.reference", "card.features[].text.samples", "card.features[].text.vocabulary", "/model/notebook"]


def without_training_values(card: ModelCard) -> ModelCard:
    """The card less its training rows and the free-text features' training values and words."""
    features = [
        spec.model_copy(update={"text": spec.text.model_copy(update={"samples": [], "vocabulary": []})})
        if spec.text is not None
        else spec
        for spec in card.features
    ]
    return card.model_copy(update={"reference": [], "features": features})


@dataclass(frozen=True)
class ServedModel:
    """A stored model with its predictor; `share_training_rows` decides what /model and the notebook show."""

    stored: bentoml.Model
    predictor: Predictor
    # Without an API key anyone who reaches the service reads /model: the training rows stay out of it (and so
    # does the executed notebook, whose outputs can show rows) unless the operator shares them (docs/security.md).
    share_training_rows: bool

    @property
    def card(self) -> ModelCard:
        return self.predictor.card

    @property
    def tag(self) -> str:
        return str(self.stored.tag)

    @property
    def service_name(self) -> str:
        """Named after its model, so `MODEL_TAG=churn_clf:latest bentoml build` makes the bento churn_clf_service."""
        return f"{self.stored.tag.name}_service"

    @property
    def created(self) -> str:
        return self.stored.info.creation_time.isoformat(timespec="seconds")

    def info(self) -> ModelInfo:
        """GET /model: tag, creation time, runtime and the card, less what is withheld."""
        shared = self.share_training_rows
        return ModelInfo(
            tag=self.tag,
            creation_time=self.stored.info.creation_time.isoformat(),
            runtime=self.predictor.runtime.name,
            card=self.card if shared else without_training_values(self.card),
            withheld=[] if shared else WITHHELD,
        )

    def notebook(self) -> Response:
        """GET /model/notebook: the executed notebook, or 403 while training rows are withheld."""
        if not self.share_training_rows:
            message = "the executed notebook can show training rows: set SERVING_API_KEY (then send it) or "
            message += "SERVING_SHARE_TRAINING_ROWS=true to serve it"
            body = {"error": message, "detail": [{"type": "withheld", "loc": ["path"], "msg": message}]}
            return JSONResponse(body, status_code=403)
        return FileResponse(
            Path(self.stored.path) / EXECUTED_NOTEBOOK_FILE,
            media_type="application/x-ipynb+json",
            filename=f"{self.stored.tag.name}-{self.stored.tag.version}.ipynb",
        )


def load_served_model(model_ref: bentoml.models.BentoModel, settings: Settings) -> ServedModel:
    """Load the model now (in every process, so broken files stop `bentoml serve` at once, not in a worker loop).

    SystemExit with one line an operator can act on, instead of a traceback: the fix is in the message.
    """
    try:
        stored = require_stored_model(model_ref)
        predictor = load_predictor(stored, settings.runtime)
    except (ModelNotAvailable, ModelLoadError) as error:
        raise SystemExit(f"The model service cannot start: {error}") from None
    return ServedModel(
        stored, predictor, share_training_rows=settings.api_key is not None or settings.share_training_rows
    )
