"""Alert rules: typed rule files, one module per rule kind, each a pure function of history and `now`."""
