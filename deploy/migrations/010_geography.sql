-- Geography (属地): the gazetteer's road table and official street territories, per district.
-- Both are reference data: bootstrap replaces a district's rows with what it was given.

CREATE TABLE street_roads (
    district_code text NOT NULL,
    unit_code     text NOT NULL REFERENCES units,
    road          text NOT NULL,
    PRIMARY KEY (district_code, road, unit_code)
);

-- Empty for a district without official polygons: territories are then built from its anchors.
-- `seq` keeps the order of the features: a point on a shared border goes to the first.
CREATE TABLE street_territories (
    district_code text NOT NULL,
    seq           integer NOT NULL,
    unit_code     text NOT NULL REFERENCES units,
    geometry      jsonb NOT NULL,   -- GeoJSON Polygon or MultiPolygon, WGS-84 lon/lat
    PRIMARY KEY (district_code, seq)
);
