# Regenerates the npz fixtures of tests/unit/data_npz_test.cc (numpy 1.24, Debian 12):
#   /usr/bin/python3 tests/data/npz/make_fixtures.py
# The test asserts these exact values; change both together.
import os

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
np.savez(os.path.join(here, "stored.npz"),
         f4=np.array([[1.5, -2.0, 3.25], [0.0, 1e-3, -7.0]], dtype="<f4"),
         f8=np.array([np.pi, -1e300], dtype="<f8"),
         i8=np.array([-(2**62), 0, 2**40 + 7], dtype="<i8"),
         # fortran_order True: the bytes run down the columns (1, 4, 2, 5, 3, 6).
         fortran=np.asfortranarray(np.array([[1, 2, 3], [4, 5, 6]], dtype="<i4")))
np.savez_compressed(os.path.join(here, "compressed.npz"),
                    i4=np.array([[-1, 2], [2147483647, -2147483648]], dtype="<i4"),
                    u1=np.array([0, 7, 255], dtype="u1"),
                    b1=np.array([True, False, True]),
                    scalar=np.float64(2.5),  # shape ()
                    empty=np.zeros((0, 3), dtype="<f4"))

# A two-agent `qv2x model inputs` frame for the tiny test config (32 x 64 pillars), as a
# NumPy user would write one (tests/unit/model_forward_test.cc): numpy's default int64,
# int16 and uint8 indices, and pairwise in Fortran order.
def translation(x, y):
    m = np.eye(4)
    m[0, 3], m[1, 3] = x, y
    return m

pairwise = np.stack([np.stack([np.eye(4), translation(-4, 1)]),
                     np.stack([translation(4, -1), np.eye(4)])])
features = np.arange(2 * 2 * 3 * 10, dtype="<f4").reshape(2, 2, 3, 10) * 0.25
np.savez_compressed(os.path.join(here, "model_inputs.npz"),
                    grid_size=np.array([32, 64]),
                    agent_ids=np.array([7, -2]),
                    lidar_pose=np.array([[0, 0, 0, 0, 0, 0], [4, -1, 0, 0, 0, 0]], dtype="<f8"),
                    pairwise=np.asfortranarray(pairwise),
                    **{"agents.0.features": features[0],
                       "agents.0.num_points": np.array([3, 1]),
                       "agents.0.coords": np.array([[0, 0], [31, 63]]),
                       "agents.1.features": features[1],
                       "agents.1.num_points": np.array([2, 3], dtype="u1"),
                       "agents.1.coords": np.array([[5, 9], [6, 9]], dtype="<i2")})
