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

__version__ = "0.1.0"
