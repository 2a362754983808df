"""Operating CityOps: the `cityops` command, bootstrap, API tokens."""
