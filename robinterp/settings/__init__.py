"""What a run can be told, declared without torch: the names a setting chooses from, the
parameters of every training method and attack, the settings of every explanation metric, and
each chapter's config.

A chapter's config is read and validated here, before anything heavy is imported, so that a
config error ends in one line in well under a second (``robinterp run CHAPTER --config F``
validates before it imports the runner; a test imports this package and resolves every chapter's
config under every profile with torch, numpy and pandas not imported).

The units that compute (``robinterp.methods``, ``robinterp.attacks``,
``robinterp.explanation_quality``) import their settings from here, and each registry checks
that its units and these declarations agree.

Cache identity: ``choices``, ``methods``, ``attacks`` and ``metrics`` declare names, fields,
defaults, ranges and docs, and validate; every value they give is in the key of what uses it
(a method's parameters complete and normalised, an attack's options likewise), so they key
nothing, like ``robinterp.config``. The chapter configs (``experiment`` and one module per
chapter) also hold the helpers a chapter's computations call (which entry a claim is about),
so they key the cached tables of the experiment module that imports them.
"""
