"""The model registry: versioned model repositories in Triton's layout.

`layout` (where a model's versions and config live, and how a version is added), `model_config` (the
config.pbtxt an ONNX graph implies) and `datatypes` are its floor: they import nothing above tierml.model, so
the stages that produce models (optimize, hybrid) write through them and the planner reads through them.
Keep this file free of imports: importing the floor must not pull in the rest of the registry.
"""
