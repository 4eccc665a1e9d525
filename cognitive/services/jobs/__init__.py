"""The durable job core shared by every kind of job (executions, optimization runs).

`kinds` says what differs between kinds; `core` claims, finishes, retries and cancels rows;
`leases` keeps the leases of the rows this process holds; `publishing` sends ids to the queue
by task name; `maintenance` is the sweeper and the reaper. See docs/architecture.md.
"""
