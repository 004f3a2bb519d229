"""Search spaces. Each subpackage registers itself in harness.registry.SPACES."""
