-- 并案 candidates by grid cell, so that finding the open cases near a new report costs the
-- same however many cases are open. A cell is 0.002 degrees square (about 220 m north-south
-- and 190 m east-west in Shanghai); services/district/duplicates.py (CELL_DEG, cell_of) lists
-- the cells a report's search box covers with the same formula.
-- (Adding a stored generated column rewrites the table once.)
ALTER TABLE cases ADD COLUMN geo_cell bigint GENERATED ALWAYS AS (
    floor(lon / 0.002)::bigint * 1000000 + floor(lat / 0.002)::bigint
) STORED;

DROP INDEX IF EXISTS cases_nearby;
CREATE INDEX cases_nearby_cell ON cases (district_code, category_code, geo_cell)
    WHERE geo_cell IS NOT NULL
      AND state NOT IN ('closed', 'not_ours', 'withdrawn', 'merged', 'rejected', 'resolved');
