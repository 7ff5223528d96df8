"""Results: the record of one row and its columns, with their units and the statistics behind them
(``schema``), grouping, ratios and the mean across seeds (``records``), and the results document,
``results.json``, written at the session end and read back to compare runs (``document``). The
session writes records, reporting reads them, and saved runs are read back into them. No pytest."""
