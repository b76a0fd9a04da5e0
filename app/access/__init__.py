"""Shop access: each shop's Admin API credentials, encrypted at rest."""
