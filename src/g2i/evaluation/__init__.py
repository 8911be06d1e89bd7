"""The paper's evaluation (section 4.2) and our gene-to-image fidelity checks.

image_metrics: PSNR, SSIM, MS-SSIM, diversity, Frechet distance, KID; inception: Inception-V3 features
for FID from a user-supplied weights file; classifier: the 2-layer CNN of Table 2; fidelity: ventricle
area on slices and the memorisation audit.
"""
