"""Deadlines: the policy, the working calendar, alarms, and the timers that fire them."""
