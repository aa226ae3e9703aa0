"""Builders for schemes: the COVID-19 special cover used across the scheme tests."""

from __future__ import annotations

COVID = """
code = "covid-19"
name_zh = "新冠肺炎专项保障"
name_en = "COVID-19 special cover"
starts_on = 2026-01-31
illness_code = "COVID19-DEATH"
illness_zh = "新冠肺炎身故"
illness_en = "death from COVID-19"
payout_fen = 10_000_000
new_member_min_days = 6
"""
