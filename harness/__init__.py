"""What the tests and the benchmarks share to run Agora for real, on the test suite's own
backing services: where a test slot listens (`environment`), stopping and starting those
services (`backing_services`), a fresh database (`database`) and vhost (`broker`), the
edge, workers and sandboxes as processes (`processes`) and the whole stack of them
(`stack`), accounts made over the public API (`accounts`), and talking to workers straight
over RabbitMQ (`bus`).

Not product code and not shipped: nothing of the product imports it (an import-linter
contract in pyproject.toml). pytest fixtures stay in tests/conftest.py files, as thin
wrappers over these functions.
"""
