"""`ray_address`: one local Ray cluster for the session (2 CPUs, no dashboard, on 127.0.0.1)."""
from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile

import pytest

from scale_fixtures import RAY_ENV

# Ray reads these when it is imported (ray_constants): set before any test module can import it, or
# its servers take the machine's network address instead of loopback.
os.environ.update(RAY_ENV)


@pytest.fixture(scope="session")
def ray_address():
    """The GCS address of a local Ray cluster, for drivers in this or other processes (pass RAY_ENV to
    those); it stops when the session ends."""
    pytest.importorskip("ray")
    import ray

    temp = tempfile.mkdtemp(prefix="qvl-ray-")  # short: Ray's socket paths must fit in 107 bytes
    # One torch thread per worker: Ray otherwise gives an actor OMP_NUM_THREADS = its CPUs (2), and on a
    # busy 2-core machine two OpenMP threads per forward pass of a tiny model run 20-50x slower than one
    # (they wait for each other's time slices), which made these tests take many minutes. The cluster's
    # processes inherit the variable from here; this process and its other children do not.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, _node_ip_address="127.0.0.1",
                 log_to_driver=False, logging_level="error")
    try:
        address = ray.get_runtime_context().gcs_address
        host = address.rsplit(":", 1)[0].strip("[]")
        assert ipaddress.ip_address(host).is_loopback, f"the test Ray cluster is not on loopback: {address}"
        yield address
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
