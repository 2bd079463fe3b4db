"""Datasets and scoring: load an eval/calibration/train set against a model, run a model over it, score it."""
