"""Networks our plans can name besides dynamic_network_architectures' own classes."""
