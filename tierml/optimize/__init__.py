"""`tierml optimize` and `tierml build`: compression passes, variant evaluation and the per-tier ladder."""
