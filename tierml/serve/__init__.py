"""`tierml serve`: an Open Inference Protocol (KServe V2 / Triton HTTP) server with dynamic batching."""
