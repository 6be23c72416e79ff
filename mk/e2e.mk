# End-to-end tests (tests/e2e): the gateway binary with the real plugin against the test Kafka
# and moto. The gateway is the one scripts/gateway.sh picks ($TG_GATEWAY_BIN, build/krakend,
# `make krakend`, else build/kdhost, the KrakenD-compatible host).
# Included by the root Makefile (include mk/*.mk).

# AWS's own Glue deserializer reads the gateway's Glue records (test_glue_aws_reader.py): its jars
# (tests/glue/pom.xml) come through Maven into ~/.cache/topicgate once, as the Kafka jars do.

.PHONY: test-e2e glue-reader

test-e2e: plugin kdhost kafka-up glue-up glue-reader registry-up ## end-to-end tests: gateway + plugin + test Kafka + moto + AWS's Glue reader + the Confluent-compatible registry (pytest tests/e2e)
	$(WITH_GATEWAY) set -a && . .run/kafka.env && . .run/glue.env && . .run/glue-reader.env && . .run/registry.env && set +a && .venv/bin/python -m pytest -q tests/e2e

glue-reader: ## fetch AWS's Glue SerDe jars for tests/glue/GlueRead.java (cached); writes .run/glue-reader.env
	scripts/glue-reader.sh jars

# KrakenD's own endpoint features (JWT, rate limit, CORS) in front of the plugin (tests/krakend).
# They need the real KrakenD CE binary, so they are not part of `make test` (CI has only kdhost).
.PHONY: test-krakend

test-krakend: plugin kafka-up glue-up ## KrakenD's JWT, rate limit and CORS before publishing, JWT before an event stream; needs build/krakend (not in make test)
	@test -x $(KRAKEND_BIN) || { echo "test-krakend: $(KRAKEND_BIN) is missing; these tests need the real KrakenD CE binary (make krakend)" >&2; exit 1; }
	set -a && . .run/kafka.env && . .run/glue.env && set +a && TG_GATEWAY_BIN=$(KRAKEND_BIN) .venv/bin/python -m pytest -q tests/krakend
