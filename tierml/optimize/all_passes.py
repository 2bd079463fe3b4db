"""Import every pass so that `Pass.registry` knows them all (passes register themselves on definition)."""

from tierml.optimize import accuracy_aware, distill, fp16, prune, quantize, search, simplify

PASS_MODULES = (accuracy_aware, distill, fp16, prune, quantize, search, simplify)
