"""Running a workflow's attempts on a pool of `gleitzeit worker` processes through Redis Streams."""
