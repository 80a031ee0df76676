"""Points and the moral e-archive (道德电子档案): the double-entry ledger every point passes through,
rules that turn service time into points, deeds and deductions, certificates and expiry.
Builds on `community`; never imports `volunteer` or `exchange`."""
