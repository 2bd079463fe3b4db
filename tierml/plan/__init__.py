"""`tierml plan`: candidate placements, constraints, scores and the explained decision."""
