"""Brain images on the MNI ICBM152 grid: grids, template anatomy and morphometry (3D volumes and 2D slices)."""
