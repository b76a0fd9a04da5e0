"""HTTP plumbing shared by every controller: the error map, request limits, guards, inputs."""
