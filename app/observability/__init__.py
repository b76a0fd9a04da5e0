"""What operators see of the service: logs and Prometheus metrics."""
