"""A simulated month of the district (`make simulate`, scripts/simulate_month.py): the demo
feed's parties on a fake clock, driven through the district's own intake, decisions, case
store and timer worker on PostgreSQL; checked for tasks born overdue and supervisions of
stages not owed, and measured for the share of cases overdue per stage.

- world.py: the district's code on a database and a fake clock (Kafka edges as calls)
- parties.py: 12345, road chiefs and units, from scripts/feedgen.py
- operator.py: the district's operators, a pluggable policy (`Desk`)
- ledger.py: what the parties saw; checks.py: the invariants and shares (pure)
- run.py: the loop; report.py: the table and the JSON
"""
