"""Fault tests: the gateway binary with the real plugin, under faults of the real servers it uses.

They stop and restart a Kafka broker, moto and the Confluent-compatible registry, so they use
their own instances (scripts/kafka.sh, glue.sh and registry.sh with TOPICGATE_RUN_DIR,
`.run/faults` under `make test-faults`), never the shared test servers. Each test starts its own gateway. What was measured (records
sent/acknowledged/found, recovery times, memory and threads) is printed at the end and written
to $TOPICGATE_RUN_DIR/figures.json.
"""

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from faultkit import Servers, run_dir

FIGURES = {}


@pytest.fixture(scope="session")
def servers():
    s = Servers()
    s.up()
    yield s
    # A test that failed half-way must not leave the broker stopped for the next run.
    if not s.broker_running():
        s.start_broker()


@pytest.fixture(scope="session")
def registry(servers):
    """The fault tests' Confluent-compatible registry (Apicurio, scripts/registry.sh in their run
    directory): started on first use, stopped at the end of the session. Its env as a dict."""
    env = servers.registry_up()
    yield env
    servers.registry_down()


@pytest.fixture
def figures(request):
    """A dict for the test's measured figures, reported at the end of the session."""
    d = FIGURES.setdefault(request.node.name, {})
    return d


@pytest.fixture
def gateways():
    """Starts gateways for one test (faultkit.start_gateway) and stops them all at its end."""
    started = []
    tmp = Path(tempfile.mkdtemp(prefix="topicgate-faults-"))

    def start(topics, core, retry_after=3, batch=None, server=None, pattern=None, read=None):
        from faultkit import FaultGateway
        g = FaultGateway(tmp / f"gw{len(started)}", topics, core, retry_after, batch, server, pattern, read)
        g.tmp.mkdir()
        started.append(g)
        _state["gateways"] = started
        g.start()
        return g

    yield start
    for g in started:
        g.stop()
    _state.pop("gateways", None)
    shutil.rmtree(tmp, ignore_errors=True)


_state = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        for g in _state.get("gateways", []):
            rep.sections.append((f"gateway log ({g.log_path})", g.log()))


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("fault test figures")
    for test, figs in FIGURES.items():
        terminalreporter.write_line(f"{test}:")
        for k, v in figs.items():
            terminalreporter.write_line(f"    {k}: {v}")
    try:
        (run_dir() / "figures.json").write_text(json.dumps(FIGURES, indent=2))
    except (OSError, RuntimeError):
        pass
