"""`serve`: the action behind Blink's plugin protocol (gRPC), one room with one door into the
engine (plugin.engine). Importing this package loads nothing of grpc; its modules do:

- server: the servicer and the process (listen, slots, stop);
- translation: protocol messages to the engine's request and back;
- wire: a request's map entries counted over its raw bytes, before parsing multiplies them;
- listener: who may call (and hosts/operator/policy: whose AWS identity signs, what a caller
  can reach);
- calls: call slots, the bytes of requests in flight, call ids, the keys each call made;
- reads: how many requests are read at once (the read gate), fair between connections;
- cut: a caller's connection closed from under grpc, when an answer on it was not read in time;
- health_listener: grpc.health.v1 alone on a port of its own, outside the main port's
  connection cap (for the kubelet's gRPC probes), and on a 0600 Unix socket no network caller
  can reach (for exec probes);
- memory: glibc's freed arenas given back after large calls;
- metrics, logs: what the operator sees (Prometheus metrics; the server's own log lines);
- (hosts/operator/settings: the one settings object, ServeSettings: each field a flag, its
  variable and its default, built by `resolve` and handed to the server, listener and health
  check; no grpc);
- health_check: the `health` command (a grpc.health.v1 probe);
- protocol: integration_pack.proto and its generated modules (`make proto`).
"""
