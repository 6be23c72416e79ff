# The Confluent-compatible test registry (scripts/registry.sh: Apicurio Registry 2.4.2, ccompat API)
# checked with Confluent's own serializers (confluent-kafka) through the test Kafka (tests/registry).
# Included by the root Makefile (include mk/*.mk).

.PHONY: test-registry

test-registry: kafka-up registry-up venv ## the test registry with Confluent's Avro/JSON Schema/Protobuf serdes through Kafka (pytest tests/registry)
	set -a && . .run/kafka.env && . .run/registry.env && set +a && .venv/bin/python -m pytest -q tests/registry
