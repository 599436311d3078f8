"""The model card: the one contract between training and everything that serves or watches a model.

`train/` writes it into the BentoML model store beside the model; `serving/`, `ui/` and `monitoring/` only
read it. It describes every feature (its kind, categories, statistics, accepted bounds, whether blanks are
allowed), the classes, the test metrics and where the model came from.
"""
