"""Cluster fault tests: the gateway with the real plugin in front of a three-broker Kafka cluster
(scripts/kafka-cluster.sh: RF 3, min.insync.replicas=2) while brokers are restarted, killed or
paused. They run their own cluster under TOPICGATE_RUN_DIR (`make test-cluster`: .run/cluster) and
reuse the fault tests' kit (tests/faults/faultkit.py) and their gateway/figures fixtures.
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

FAULTS = Path(__file__).resolve().parents[1] / "faults"
sys.path.insert(0, str(FAULTS))

from faultkit import Cluster  # noqa: E402

# The fault tests' fixtures and report hooks, loaded from their conftest (not its `servers`).
_spec = importlib.util.spec_from_file_location("topicgate_faults_conftest", FAULTS / "conftest.py")
_faults = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_faults)
gateways = _faults.gateways
figures = _faults.figures
pytest_runtest_makereport = _faults.pytest_runtest_makereport
pytest_terminal_summary = _faults.pytest_terminal_summary


@pytest.fixture(scope="session")
def cluster():
    c = Cluster()
    c.up()
    env = c.env_vars()
    # The gateway kit reads these: the cluster is the gateway's Kafka. The cluster tests use file
    # schemas only; the Glue endpoint must be set for the kit but is never contacted.
    os.environ["KAFKA_BOOTSTRAP"] = env["KAFKA_CLUSTER_BOOTSTRAP"]
    os.environ["KAFKA_CLASSPATH"] = env["KAFKA_CLASSPATH"]
    os.environ.setdefault("AWS_ENDPOINT_URL_GLUE", "http://127.0.0.1:9")
    c.wait_healthy()
    yield c
    # A test that failed half-way must not leave a broker stopped or paused for the next one.
    for n in Cluster.NODES:
        if c.running(n):
            try:
                c.resume_broker(n)
            except AssertionError:
                pass
        else:
            c.start_broker(n)
