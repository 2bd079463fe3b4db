"""The fleet control plane: the registry's HTTP API and the rollout controller."""
