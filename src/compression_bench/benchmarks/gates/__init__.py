"""Gates: the thresholds file (``thresholds``, its layout checked by ``thresholds_schema``): the accuracy
floors and drops, size and speed expectations per profile, model, method and CPU class, and the checks
that turn a record's figures into gate failures or ⚠ flags. The session's judge applies them to each
record (:class:`benchmarks.session.judge.Judge`). No pytest."""
