-- The outbox is a queue: rows live for milliseconds. Vacuum it eagerly so the sweeper's index
-- scans do not wade through dead tuples after a burst.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
                        autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0,
                        autovacuum_analyze_threshold = 5000);
ALTER TABLE street.outbox SET (autovacuum_vacuum_scale_factor = 0,
                               autovacuum_vacuum_threshold = 5000,
                               autovacuum_vacuum_cost_delay = 0);
