"""Figures and summaries written under reports/ (DVC metrics and plots)."""
