"""The session: options checked into one configuration (``config``), the workspace that memoises trained
models, variants and runtime artifacts (``workspace``, over the cached ``pipeline`` and
``runtime_variants``), the judge that makes records and applies the gates (``judge``), records and their
schema, and the thresholds that judge them; ``session`` composes them. No pytest."""
