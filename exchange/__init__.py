"""The moral supermarket (道德超市): stores, items, the stock ledger and redemptions (through
`points`). Never imports `volunteer`."""
