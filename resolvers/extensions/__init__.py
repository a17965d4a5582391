"""Schema extensions every operation runs through: documents, the input gate, cost and
rate limits, errors, the execution fast path, and the search and degradation reports."""
