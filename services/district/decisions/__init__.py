"""What the district decides about a case, one module per group of decisions. Pure."""
