# End-to-end tests (tests/e2e): the gateway binary with the real plugin against the test Kafka
# and moto. The gateway is $TG_GATEWAY_BIN, else build/krakend when it is built, else
# build/kdhost (the KrakenD-compatible host; `make krakend` needs KrakenD's modules).
# Included by the root Makefile (include mk/*.mk).

.PHONY: test-e2e

test-e2e: plugin kdhost kafka-up glue-up ## end-to-end tests: gateway + plugin + test Kafka + moto (pytest tests/e2e)
	set -a && . .run/kafka.env && . .run/glue.env && set +a && .venv/bin/python -m pytest -q tests/e2e
