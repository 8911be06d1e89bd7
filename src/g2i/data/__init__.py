"""Model inputs derived from the raw cohort: clinical labels, the genotype table, axial T1 slices, splits."""
