"""Input and output serializers of the allocations app, split by topic; each has a unique
name so the schema's components never collide."""
