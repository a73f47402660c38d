"""The action kinds, each an Executor (plan, execute, verify, undo). Heavy clients
(psycopg, boto3) are imported inside the calls, never at start-up."""
