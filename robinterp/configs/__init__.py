"""Each chapter's config, one module per chapter, and the fields they share (``experiment``): frozen
dataclasses whose fields carry docstrings saying the paper's value and ours, read and validated
without importing torch, numpy or pandas (``robinterp.chapters`` resolves them before a kernel
starts; a test checks that nothing heavy is imported).

A chapter's computations (``robinterp.experiments.<chapter>``) take its config; the helpers
here (which listed entry a claim is about) are part of what keys their cached tables.
"""
