"""Watching a served model: prediction metrics, the prediction log, JSON logs and the drift check."""
