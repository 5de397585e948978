"""The benchmark's metrics (SPEC 7): keypoint AP (DAP) and MPJPE, CLIP score, FID/KID on foregrounds."""
