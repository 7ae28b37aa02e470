"""Every op family on random cases (tests/fuzz/cases.py) run in a worker process
(tests/fuzz/worker.py): each must match the reference or be refused with an exception naming an
argument; a crash or a hang fails the case that caused it, and hypothesis shrinks it.

CI runs the "fuzz-ci" profile: derandomized (the same cases every run), 1,000 per family.
FASTCONV_FUZZ=slow runs 10,000 per family; FASTCONV_FUZZ=random draws new cases each run;
FASTCONV_FUZZ_EXAMPLES=n sets the number of cases per family of any of them."""
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.cases import FAMILIES
from tests.fuzz.runner import Worker

pytest.importorskip("torch")  # the reference of most families

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("fuzz-ci", max_examples=1000, derandomize=True, **_COMMON)
settings.register_profile("fuzz-slow", max_examples=10_000, derandomize=True, **_COMMON)
settings.register_profile("fuzz-random", max_examples=1000, derandomize=False, **_COMMON)
PROFILE = {"slow": "fuzz-slow", "random": "fuzz-random"}.get(os.environ.get("FASTCONV_FUZZ", ""), "fuzz-ci")
EXAMPLES = {"max_examples": int(os.environ["FASTCONV_FUZZ_EXAMPLES"])} if "FASTCONV_FUZZ_EXAMPLES" in os.environ else {}


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()


def _fuzz(family):
    @settings(settings.get_profile(PROFILE), **EXAMPLES)
    @given(case=FAMILIES[family])
    def check(worker, case):
        failure = worker.run(case)
        assert failure is None, f"{family} case {json.dumps(case)}: {failure}"
    return check


for _family in FAMILIES:
    globals()[f"test_fuzz_{_family}"] = _fuzz(_family)
