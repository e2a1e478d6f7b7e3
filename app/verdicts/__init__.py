"""Verdicts: the statistics of a finished version, stored with every number behind them."""
