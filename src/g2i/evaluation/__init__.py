"""The paper's evaluation (section 4.2) and our gene-to-image fidelity checks.

image_metrics: PSNR, SSIM, MS-SSIM, diversity, Frechet distance, KID; inception: Inception-V3 features
for FID from a user-supplied weights file; classifier: the 2-layer CNN of Table 2 and the feature CNN of
FD_cnn / KID_cnn; evaluate: Table 1's numbers and the per-model fidelity numbers; fidelity: the APOE e4
effect on the ventricle area of slices (the area itself: g2i.imaging.slice_morphometry); memorisation:
nearest-training-slice SSIM; truth, truth_fidelity: generated slices against the synthetic cohort's
planted truth; probes: where a model's conditioning loses the genotype; tables: the Markdown of Table 1,
Table 2 and the fidelity report; figures: Figures 2 and 3.
"""
