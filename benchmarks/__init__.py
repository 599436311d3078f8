"""Benchmarks: the served bento side by side with the Flask + pickle baseline and a bare-starlette floor."""
