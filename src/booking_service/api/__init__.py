"""The booking service's HTTP API: DRF views over the apps' services, selectors and
actions, and the batched view for plain ticket holds (`batched`). `urls` routes them."""
