"""Forecasts: simulate a plan's members, cases and shares over many periods and random scenarios
(NumPy, cohorts rather than rows per member), and check the default model against Xiang Hu Bao."""
