"""Hybrid execution: a model split between a device and a server, adapting to the link."""
