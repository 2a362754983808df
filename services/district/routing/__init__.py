"""Who handles a case: rules, reference data, territories, coordinates, addresses."""
