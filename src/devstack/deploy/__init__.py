"""Deployment tooling: `dev.py deploy-check` (the chart and compose file, validated offline)
and `dev.py image-test` (the container image, built and run)."""
