"""tierml: place one trained model on the cloud-edge-mobile-tiny spectrum, measured."""

__version__ = "0.1.0"
