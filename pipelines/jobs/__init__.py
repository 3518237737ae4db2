"""Jobs as the library: the scheduled jobs (``scheduled.py``, what ``riskctl jobs run NAME`` and
the CDK app's scheduled tasks run) and the demo's steps (``demo.py``), which the CLI, the benches
and the tests call alike."""
