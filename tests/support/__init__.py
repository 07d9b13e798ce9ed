"""What the tests share, apart from the tests themselves (no test module imports another):

- paths, ports, cli: the checkout's root, a free loopback port, the command line run as a
  process;
- loopback_http: an HTTP server on loopback in threads of its own, the local endpoints' base;
- refusals: a refusal before anything is sent (code 2, no request to AWS);
- custody_figures: the custody tests' figures, printed at the end of the run;
- local_iam: a real local IAM endpoint (moto's server on 127.0.0.1, behind a request log);
- fault_proxy: a fault-injecting HTTP proxy between the action and the local endpoint;
- canned_iam: a minimal IAM endpoint with one fixed answer, for the benchmark;
- dripping_endpoint: an IAM endpoint that drips its answer, a byte at a time;
- large_answer_endpoint: an IAM endpoint whose every answer is megabytes long (body or headers);
- grpc_plugin: `serve` as a process of its own, and a real gRPC client for it;
- serve_calls: the server's own (ambient) identity, a create over gRPC;
- serve_metrics: where serve says its metrics are, and waiting for a value;
- held_connections, hang_up: connections held open against a port's cap; callers that never
  read their answer, or hang up while it is written;
- stalled_streams: hostile clients (streams never sent) and what the server's process holds;
- slow_senders: streams that stall part-way through a large message, reopened when ended;
- gate_hold: connections from one address whose streams never send, reopened when ended;
- service_links: the variables the kubelet injects for a namespace's Services;
- pki: a throwaway certificate authority for the TLS tests;
- shuffle_app: the Shuffle app as its image runs it (built once a module);
- shuffle_backend: a local stand-in for Shuffle's backend, as an app's SDK talks to it;
- key_lifetime_in_aws: the expiry schedule run as AWS would, and the tags, read back;
- parameters: the action's parameters as the tests expect them;
- readme_grpc_example, readme_recipes: blocks taken from the README as written;
- settings_table: the README's table of serve's settings, rendered from the settings table;
- dockerfile: the Dockerfile's instructions, read;
- lockfile: the image's hash-locked requirements (`python -m tests.support.lockfile` stamps).

The scripts people run (`python -m tests.benchmark`, `python -m tests.measure_*`) stay in tests/.
"""
