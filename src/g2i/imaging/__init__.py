"""Brain images on the MNI ICBM152 grid: grids, template anatomy and morphometry."""
