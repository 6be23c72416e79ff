# Fault tests (tests/faults, pytest): the gateway with the real plugin while its Kafka broker is
# restarted, its registry (moto, or the Confluent-compatible Apicurio) is stopped, its producer queue
# is full, it gets SIGTERM, and a soak. They stop and start servers, so they run their own broker
# and moto under $(FAULTS_RUN_DIR) (scripts/kafka.sh and glue.sh with TOPICGATE_RUN_DIR), never the
# shared ones in .run/, and stop them at the end, pass or fail; the registry test starts its own
# Apicurio there (tests/faults/conftest.py `registry`), and the target stops it too. Figures go to $(FAULTS_RUN_DIR)/figures.json and the test summary.
# Included by the root Makefile (include mk/*.mk).

FAULTS_RUN_DIR := .run/faults
FAULTS_SCRIPTS := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../scripts)
# Records in the soak of test-faults; `make soak` sends SOAK_RECORDS.
FAULTS_SOAK_RECORDS ?= 50000
SOAK_RECORDS ?= 1000000
# Records of the big stream of test-stream.
STREAM_RECORDS ?= 1000000

# Starts the fault servers, runs pytest on $(1) with their addresses (and the assignments $(2)), stops them.
define run_faults
	@rc=0; export TOPICGATE_RUN_DIR=$(FAULTS_RUN_DIR); \
	$(WITH_GATEWAY) $(FAULTS_SCRIPTS)/kafka.sh up && $(FAULTS_SCRIPTS)/glue.sh up && \
	( set -a && . $(FAULTS_RUN_DIR)/kafka.env && . $(FAULTS_RUN_DIR)/glue.env && set +a && \
	  $(2) .venv/bin/python -m pytest -q $(1) ) || rc=$$?; \
	$(FAULTS_SCRIPTS)/kafka.sh down; $(FAULTS_SCRIPTS)/glue.sh down; $(FAULTS_SCRIPTS)/registry.sh down; exit $$rc
endef

.PHONY: test-faults test-stream soak faults-down

test-faults: plugin kdhost ## fault tests: broker restart, registry outages (Glue, Confluent), full queue, SIGTERM, 50k soak (own broker+moto+registry in .run/faults)
	$(call run_faults,tests/faults --ignore=tests/faults/test_long_stream.py,SOAK_RECORDS=$(FAULTS_SOAK_RECORDS))

test-stream: plugin kdhost ## long streams: 100,000 records across a broker stop, RSS of a STREAM_RECORDS (1000000) stream
	$(call run_faults,tests/faults/test_long_stream.py,STREAM_RECORDS=$(STREAM_RECORDS))

soak: plugin kdhost ## soak: SOAK_RECORDS (default 1000000) records through the gateway; RSS flat, every record read back
	$(call run_faults,tests/faults/test_soak.py,SOAK_RECORDS=$(SOAK_RECORDS))

faults-down: ## stop the fault tests' broker, moto and registry if a run was interrupted
	TOPICGATE_RUN_DIR=$(FAULTS_RUN_DIR) $(FAULTS_SCRIPTS)/kafka.sh down
	TOPICGATE_RUN_DIR=$(FAULTS_RUN_DIR) $(FAULTS_SCRIPTS)/glue.sh down
	TOPICGATE_RUN_DIR=$(FAULTS_RUN_DIR) $(FAULTS_SCRIPTS)/registry.sh down
