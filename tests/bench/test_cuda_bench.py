"""The GPU benchmark's bookkeeping, which must hold on the one GPU run it gets: a case whose kernel
is missing or broken is reported with the reason instead of ending the run, and without CUDA the
report says why."""
import json

from fastconv import backend
from fastconv.bench import cuda as bench


def test_a_case_without_a_cuda_kernel_is_reported_as_skipped_with_the_reason():
    def missing():
        raise backend.DeviceError("grid_sample_forward: fastconv has no CUDA kernel for this yet")

    result = bench.run_case("sampling", "grid_sample", 1, {"fastconv": missing}, repeats=1)
    assert result == {"family": "sampling", "case": "grid_sample",
                      "skipped": "grid_sample_forward: fastconv has no CUDA kernel for this yet"}
    assert bench._line(result) == "grid_sample: skipped (grid_sample_forward: fastconv has no CUDA kernel for this yet)"


def test_a_broken_case_is_reported_as_failed_and_the_run_goes_on():
    def broken():
        raise ValueError("bad shape")

    assert bench.run_case("pool", "max", 1, {"fastconv": broken}, 1)["failed"] == "ValueError: bad shape"

    def broken_cases(rng, torch):  # a family whose arrays cannot even be made
        raise RuntimeError("no memory")
        yield

    assert bench._family_results(broken_cases, None, None, 1) == [{"family": "broken",
                                                                   "failed": "RuntimeError: no memory"}]


def test_without_cuda_the_report_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(backend, "kernel_devices", lambda: (["cpu"], "CuPy is not installed"))
    out = tmp_path / "bench.json"
    assert bench.main([str(out)]) == 0
    assert json.loads(out.read_text()) == {"skipped": "no CUDA here: CuPy is not installed"}
