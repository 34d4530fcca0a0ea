"""Dock feedback outputs, one module each, found by name (see edge_agent/feedback.py).

A module here is an output: it defines `make_output(options) -> FeedbackOutput`, where
`options` is the gateway config's `[feedback.options.<module name>]` table (empty if none).
"""
