"""The features of a team sharing one server.

- keys: named API keys and their roles
- auth: the one key check every surface makes of a call
- quotas: per-key limits (requests at once, images per day)
- tenancy: whose work a caller may see
- history: every request with its outcome, listed and paged
- retention: old images (and their operations) deleted by age and by total size
- metrics: the numbers in Prometheus form
"""
