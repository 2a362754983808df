"""Closed-loop KPIs: formulas, the SQL that counts, the report."""
