"""HTML reports with plots for the verbs' results."""
