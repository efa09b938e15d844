"""threadpool: a Ceph-style ThreadPool with work queues and heartbeats (in progress)."""
