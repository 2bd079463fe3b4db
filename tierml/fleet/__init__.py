"""The registry's control plane: the HTTP API publishers, operators and devices talk to (`api`), the signed desired
state each device is told (`desired`), who may call what (`auth`), byte ranges of blobs (`ranges`), the server
process (`server`), a client for the publisher and operator routes (`client`), and the rollout controller
(`rollout`).
"""
