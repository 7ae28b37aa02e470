"""pytest-benchmark suites, one file per fastconv-bench section: `pytest benchmarks -p no:xdist`
times exactly the runners fastconv-bench times (a test module names its section in SECTION),
each case's runners in one group, ours beside its peers. They never assert speed (ratios live
in the fastconv-bench table)."""
import pytest

import fastconv
from fastconv.bench import harness, peers

THREADS = 2


@pytest.fixture(scope="session", autouse=True)
def two_threads():
    fastconv.set_num_threads(THREADS)
    peers.limit_numpy_threads(THREADS)
    peers.load_torch(THREADS)


def pytest_generate_tests(metafunc):
    """Parametrises a test taking `case` and `impl` over every runner of every case of its
    module's SECTION, with ids like resnet20_c16-fwd-torch_cl."""
    if {"case", "impl"} <= set(metafunc.fixturenames):
        cases = harness.section_cases(metafunc.module.SECTION, harness.load_layers(), peers.load_torch(THREADS))
        runs = [(case, impl) for case in cases for impl in case.runners]
        metafunc.parametrize("case,impl", runs, ids=[f"{case.name}-{case.mode}-{impl}" for case, impl in runs])


@pytest.fixture(autouse=True)
def group_by_case(request):
    """One pytest-benchmark group per case: its runners, ours and the peers', side by side."""
    if hasattr(request.node, "callspec") and "case" in request.node.callspec.params:
        case = request.node.callspec.params["case"]
        request.getfixturevalue("benchmark").group = f"{case.name} {case.mode}"
