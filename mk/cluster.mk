# Three-broker test cluster (scripts/kafka-cluster.sh: KRaft, loopback, RF 3, min.insync.replicas=2)
# and the cluster fault tests (tests/cluster) that restart, kill and pause its brokers under load.
# kafka-cluster-up writes .run/kafka-cluster.env; test-cluster runs its own cluster under
# $(CLUSTER_RUN_DIR) and stops it at the end, pass or fail. Included by the root Makefile.

CLUSTER_RUN_DIR := .run/cluster
CLUSTER_SCRIPTS := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../scripts)

.PHONY: kafka-cluster-up kafka-cluster-down kafka-cluster-status test-cluster cluster-down

kafka-cluster-up: ## start the three-broker test Kafka cluster (KRaft, loopback, RF 3, min ISR 2), or reuse it; writes .run/kafka-cluster.env
	$(CLUSTER_SCRIPTS)/kafka-cluster.sh up

kafka-cluster-down: ## stop the test Kafka cluster and delete its storage
	$(CLUSTER_SCRIPTS)/kafka-cluster.sh down

kafka-cluster-status: ## are the three test brokers answering?
	$(CLUSTER_SCRIPTS)/kafka-cluster.sh status

test-cluster: plugin kdhost ## cluster fault tests under load: rolling restart of 3 brokers, SIGKILL of a leader, two brokers down, atomic batches and a stream across a leader kill, gateway SIGTERM mid-roll, Idempotency-Key retries across two replicas through a roll and a kill (own cluster in .run/cluster)
	@rc=0; export TOPICGATE_RUN_DIR=$(CLUSTER_RUN_DIR); \
	$(WITH_GATEWAY) .venv/bin/python -m pytest -q tests/cluster || rc=$$?; \
	$(CLUSTER_SCRIPTS)/kafka-cluster.sh down; exit $$rc

cluster-down: ## stop the cluster tests' cluster if a run was interrupted
	TOPICGATE_RUN_DIR=$(CLUSTER_RUN_DIR) $(CLUSTER_SCRIPTS)/kafka-cluster.sh down
