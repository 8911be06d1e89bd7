"""G2I (Gene-to-Image): decoding brain images from genetics with latent diffusion models."""

import os as _os

# The data is medical and the machines are offline: no library phones home unless a user opts in.
for _key, _value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}.items():
    _os.environ.setdefault(_key, _value)

# Byte reproducibility per CPU type: MKL's GEMM (torch's Linear layers on x86) otherwise picks its code path by
# the operands' memory alignment, which moves with the process's environment size. On an Intel Xeon a CGAN test
# set came out 1 float16 ulp apart in half its rows between two `make demo` runs. STRICT mode is alignment-
# independent, at x0.95-1.02 of the default's GEMM time (benchmarks/mkl_cbwr.py). Set before torch's first MKL
# call: every stage imports g2i first. A user's own MKL_CBWR wins.
_os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"
