# Secure test broker for the security tests (see scripts/kafka-secure.sh): a second Kafka in KRaft mode
# with PLAINTEXT, SSL, MTLS, SASL_SSL (SCRAM) and OAUTH (MSK IAM tokens) listeners on free loopback ports,
# and a fresh test PKI. After `up`, .run/kafka-secure.env holds the addresses, cert dir and test credentials
# (KEY=VALUE lines; a recipe can `set -a; . .run/kafka-secure.env; set +a`).
# Included by the root Makefile (include mk/*.mk).

SECURE_MK_SCRIPTS := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../scripts)

.PHONY: kafka-secure-up kafka-secure-down kafka-secure-status kafka-secure-selftest

kafka-secure-up: ## start the secure test Kafka broker (TLS, mTLS, SCRAM, MSK IAM), or reuse it; writes .run/kafka-secure.env
	$(SECURE_MK_SCRIPTS)/kafka-secure.sh up

kafka-secure-down: ## stop the secure test Kafka broker; delete its storage and certificates
	$(SECURE_MK_SCRIPTS)/kafka-secure.sh down

kafka-secure-status: ## is the secure test Kafka broker answering?
	$(SECURE_MK_SCRIPTS)/kafka-secure.sh status

kafka-secure-selftest: ## compile and self-test the broker's MSK IAM token validator (no broker needed)
	$(SECURE_MK_SCRIPTS)/kafka-secure.sh selftest
