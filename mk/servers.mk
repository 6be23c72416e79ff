# Test servers (see scripts/kafka.sh, scripts/glue.sh, scripts/registry.sh): Apache Kafka in KRaft
# mode, moto as the AWS Glue API and Apicurio Registry as a Confluent-compatible schema registry, all
# on free loopback ports. After `up`, .run/kafka.env, .run/glue.env and .run/registry.env hold the
# addresses (KEY=VALUE lines; a recipe can `set -a; . .run/kafka.env; set +a`).
# Included by the root Makefile (include mk/*.mk).

SERVERS_MK_SCRIPTS := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../scripts)

.PHONY: kafka-up kafka-down kafka-status glue-up glue-down glue-status registry-up registry-down registry-status servers-up servers-down servers-status venv

kafka-up: ## start the test Kafka broker (KRaft, loopback), or reuse it; writes .run/kafka.env
	$(SERVERS_MK_SCRIPTS)/kafka.sh up

kafka-down: ## stop the test Kafka broker and delete its storage
	$(SERVERS_MK_SCRIPTS)/kafka.sh down

kafka-status: ## is the test Kafka broker answering?
	$(SERVERS_MK_SCRIPTS)/kafka.sh status

glue-up: ## start moto as the Glue API (loopback), or reuse it; writes .run/glue.env
	$(SERVERS_MK_SCRIPTS)/glue.sh up

glue-down: ## stop moto
	$(SERVERS_MK_SCRIPTS)/glue.sh down

glue-status: ## is moto answering?
	$(SERVERS_MK_SCRIPTS)/glue.sh status

registry-up: ## start the Confluent-compatible test registry (Apicurio, loopback; built once into ~/.cache), or reuse it; writes .run/registry.env
	$(SERVERS_MK_SCRIPTS)/registry.sh up

registry-down: ## stop the test registry (its state is in memory: gone)
	$(SERVERS_MK_SCRIPTS)/registry.sh down

registry-status: ## is the test registry answering?
	$(SERVERS_MK_SCRIPTS)/registry.sh status

# Python test tools (moto, boto3, pytest, hadolint) live in .venv/.
venv: ## create/refresh .venv from tests/requirements.txt
	$(SERVERS_MK_SCRIPTS)/glue.sh venv

# The scripts lock separately, so they can run in parallel.
servers-up: kafka-up glue-up registry-up ## start Kafka, moto and the registry (make -j3 starts them at once)

servers-down: kafka-down kafka-cluster-down glue-down registry-down ## stop Kafka (one broker and the cluster), moto and the registry

servers-status: ## status of Kafka, moto and the registry (non-zero if any is down)
	$(SERVERS_MK_SCRIPTS)/kafka.sh status; k=$$?; $(SERVERS_MK_SCRIPTS)/glue.sh status; g=$$?; \
	$(SERVERS_MK_SCRIPTS)/registry.sh status; r=$$?; exit $$((k || g || r))
