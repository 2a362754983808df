"""The case record: model, state machine, the store that locks and writes cases, replay."""
