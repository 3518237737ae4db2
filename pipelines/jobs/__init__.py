"""Scheduled jobs: what ``riskctl jobs run NAME`` and the scheduled tasks of the CDK app run."""
