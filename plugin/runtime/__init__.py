"""The runtime of one invocation: its context, its time, and what its logs may show.

- context: what belongs to one invocation (a context variable, also in its worker threads);
- deadline: the invocation's time budget, and calls that wait no longer than it;
- redaction: a logging filter built from the schemas' secret marks;
- key_witness: tells the host about keys made and waits as they happen.

Imports the runtime and the contract. This file imports nothing.
"""
