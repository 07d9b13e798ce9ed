"""Generated gRPC modules of the plugin protocol (integration_pack.proto); `make proto` writes
them. Not edited, not linted, not type-checked: tests/test_grpc_protocol.py proves they equal a
fresh generation."""
