"""Forecasts of a live plan: what the simulator (`mutualaid.forecasts`) needs to know about a plan
as it stands today, read from the database in a few grouped queries (never a row per member).

Use cases: `plan_today` (the plan's members by joining month, sex and birth year, its recent
joiners, observed claims and leavers, surplus and this year's shares) and `live_forecast_inputs`
(the model and starting point built from it)."""
