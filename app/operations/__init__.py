"""What operators use: health probes, logs, metrics, and the admin API."""
