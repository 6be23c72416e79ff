# Test servers (see scripts/kafka.sh and scripts/glue.sh): Apache Kafka in KRaft mode and moto
# as the AWS Glue API, both on free loopback ports. After `up`, .run/kafka.env and .run/glue.env
# hold the addresses (KEY=VALUE lines; a recipe can `set -a; . .run/kafka.env; set +a`).
# Included by the root Makefile (include mk/*.mk).

SERVERS_MK_SCRIPTS := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../scripts)

.PHONY: kafka-up kafka-down kafka-status glue-up glue-down glue-status servers-up servers-down servers-status venv

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

# Python test tools (moto, boto3, pytest, hadolint) live in .venv/.
venv: ## create/refresh .venv from tests/requirements.txt
	$(SERVERS_MK_SCRIPTS)/glue.sh venv

# The two scripts lock separately, so they can run in parallel.
servers-up: kafka-up glue-up ## start Kafka and moto (make -j2 starts both at once)

servers-down: kafka-down glue-down ## stop Kafka and moto

servers-status: ## status of Kafka and moto (non-zero if either is down)
	$(SERVERS_MK_SCRIPTS)/kafka.sh status; k=$$?; $(SERVERS_MK_SCRIPTS)/glue.sh status; g=$$?; exit $$((k || g))
