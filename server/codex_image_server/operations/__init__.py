"""Detached generations: long-running operations that outlive their caller.

- runner: queued operations taken (with a lease) and run on every server
- webhooks: the outcome POSTed, signed per Standard Webhooks, retried
"""
