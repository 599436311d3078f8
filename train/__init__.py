"""Train a model by executing a Jupyter notebook with nbclient and save it into the BentoML model store."""
