"""The app spec (tierml.yaml)."""
