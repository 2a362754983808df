"""What waits on whom: open and overdue counts, case search, the gauges."""
