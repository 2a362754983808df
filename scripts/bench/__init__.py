"""CityOps benchmarks (`make bench`): `harness`, `scenarios`, `report`; run with `-m bench`."""
