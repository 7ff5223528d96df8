"""Reporting: the tables, report.md and result files, plots, recommendations, the cross-runtime and per-class tables, the session's end, and comparing saved runs. No pytest."""
