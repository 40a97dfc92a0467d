"""What a unit can be told, declared without torch: the names a setting chooses from
(``choices``), the parameters of every training method (``methods``), the options of every attack
(``attacks``), the settings of every explanation metric (``metrics``), and the teacher a method
derives from its parameters (``teachers``).

The chapters' configs (``robinterp.configs``) are built from these, so a config is read and
validated before anything heavy is imported: a config error ends in one line in a fraction of a
second (``robinterp run CHAPTER --config F`` validates before it imports the runner; a test
resolves every chapter's config under every profile and finds torch, numpy and pandas not
imported). The units that compute (``robinterp.methods``, ``robinterp.attacks``,
``robinterp.explanation_quality``) import their settings from here, and each registry checks that
its units and these declarations agree.

Cache identity: ``choices``, ``methods``, ``attacks`` and ``metrics`` declare names, fields,
defaults, ranges and docs, and validate; every value they give is in the key of what uses it (a
method's parameters complete and normalised, an attack's options likewise, a metric's defaults in
its own function), so they key nothing, like ``robinterp.config``. ``teachers`` derives which
model a student learns from, so it keys the students' models.
"""
