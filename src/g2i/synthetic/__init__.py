"""A synthetic cohort written in exactly ADNI's formats, with known genetic effects on anatomy.

Everything here is SYNTHETIC: subjects, genotypes and images are simulated so that G2I runs end to end
without ADNI access, and so that later stages can check generated images against a known ground truth.
"""
