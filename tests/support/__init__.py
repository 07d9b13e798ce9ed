"""What the tests share, apart from the tests themselves (no test module imports another):

- local_iam: a real local IAM endpoint (moto's server on 127.0.0.1, behind a request log);
- fault_proxy: a fault-injecting HTTP proxy between the action and the local endpoint;
- canned_iam: a minimal IAM endpoint with one fixed answer, for the benchmark;
- grpc_plugin: `serve` as a process of its own, and a real gRPC client for it;
- pki: a throwaway certificate authority for the TLS tests;
- shuffle_backend: a local stand-in for Shuffle's backend, as an app's SDK talks to it;
- dockerfile: the Dockerfile's instructions, read;
- lockfile: the image's hash-locked requirements (`python -m tests.support.lockfile` stamps).

The scripts people run (`python -m tests.benchmark`, `python -m tests.measure_*`) stay in tests/.
"""
