"""Genotypes: the AD SNP panel, APOE, and PLINK 1 binary files."""
