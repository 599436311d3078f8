"""Run-time pieces of the prediction service: settings, model card, input schemas, predictor."""
