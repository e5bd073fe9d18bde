"""`python -m devstack.calcom_fake`: the fake on its own (the benchmarks run it as a separate process)."""

from devstack.calcom_fake.app import main

main()
